// SPDX-License-Identifier: LGPL-2.1-or-later
// Arrival->push latency of pipewireprocsrc, per chunk, as its `stats` report it.
//
// One pipeline with a `pipewireprocsrc pid=PID ! fakesink` branch per PID. A buffer probe on
// each source pad reads `latency-last` on the streaming thread that just pushed the chunk.
// This is C++ on purpose: probes in Python queue every streaming thread on the GIL, which
// switches every 5 ms, and measured that instead of the element (p99 ~3 ms at 10 sources).
//
//   pipewire-latency [--seconds S] [--warmup S] PID...
//
// Prints one line of JSON: sources; chunks seen by the probes and pushed by the sources;
// p50/p99/max over every chunk after the warm-up (start-up is not the steady state: the first
// buffers wait for caps, allocation and every streaming thread starting at once), and the
// worst chunk of the warm-up on its own; frames dropped. Exits 1 on a bus error, an end of
// stream (a target exited), a failed start or a missing plugin; 2 on bad arguments.

#include <gst/gst.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// When the warm-up ends (monotonic us); set before the streaming threads start.
gint64 warm_after_us = 0;

struct Branch {
  GstElement *src = nullptr;
  // Written only by this branch's streaming thread; read after the pipeline stopped.
  std::vector<double> steady_ms;
  double warmup_max_ms = 0.0;
  size_t chunks = 0;
};

guint64 stat_of(GstElement *src, const char *field) {
  GstStructure *stats = nullptr;
  g_object_get(src, "stats", &stats, nullptr);
  guint64 value = 0;
  if (stats) {
    gst_structure_get_uint64(stats, field, &value);
    gst_structure_free(stats);
  }
  return value;
}

GstPadProbeReturn on_buffer(GstPad *, GstPadProbeInfo *, gpointer user_data) {
  auto *branch = static_cast<Branch *>(user_data);
  const double ms = stat_of(branch->src, "latency-last") / 1e6;
  ++branch->chunks;
  if (g_get_monotonic_time() >= warm_after_us)
    branch->steady_ms.push_back(ms);
  else
    branch->warmup_max_ms = std::max(branch->warmup_max_ms, ms);
  return GST_PAD_PROBE_OK;
}

double percentile(const std::vector<double> &sorted, double q) {
  if (sorted.empty())
    return 0.0;
  // Nearest rank, as numpy's "higher" would give; no interpolation between two chunks.
  const size_t rank = static_cast<size_t>(q * (sorted.size() - 1) + 0.999999);
  return sorted[std::min(rank, sorted.size() - 1)];
}

int usage() {
  std::fprintf(stderr, "usage: pipewire-latency [--seconds S] [--warmup S] PID...\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  double seconds = 10.0, warmup = 1.0;
  std::vector<std::string> pids;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--seconds" || arg == "--warmup") && i + 1 < argc)
      (arg == "--seconds" ? seconds : warmup) = std::atof(argv[++i]);
    else if (!arg.empty() && arg[0] != '-')
      pids.push_back(arg);
    else
      return usage();
  }
  if (pids.empty() || seconds <= 0)
    return usage();
  if (GstPluginFeature *feature =
          gst_registry_lookup_feature(gst_registry_get(), "pipewireprocsrc")) {
    gst_object_unref(feature);
  } else {
    std::fprintf(stderr, "pipewireprocsrc not found: set GST_PLUGIN_PATH to the build's gst/\n");
    return 1;
  }

  GstElement *pipeline = gst_pipeline_new("latency");
  std::vector<Branch> branches(pids.size());
  for (size_t i = 0; i < pids.size(); ++i) {
    Branch &b = branches[i];
    b.src = gst_element_factory_make("pipewireprocsrc", nullptr);
    GstElement *sink = gst_element_factory_make("fakesink", nullptr);
    gst_util_set_object_arg(G_OBJECT(b.src), "pid", pids[i].c_str());
    g_object_set(sink, "sync", FALSE, nullptr);
    gst_bin_add_many(GST_BIN(pipeline), b.src, sink, nullptr);
    GstCaps *caps = gst_caps_from_string("audio/x-raw,format=F32LE,rate=48000,channels=2");
    gst_element_link_filtered(b.src, sink, caps);
    gst_caps_unref(caps);
    // 10 ms chunks: enough room that the probe never reallocates while measuring.
    b.steady_ms.reserve(static_cast<size_t>((seconds + warmup + 5) * 100));
    GstPad *pad = gst_element_get_static_pad(b.src, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &b, nullptr);
    gst_object_unref(pad);
  }

  warm_after_us = g_get_monotonic_time() + static_cast<gint64>(warmup * G_USEC_PER_SEC);
  int rc = 0;
  GstBus *bus = gst_element_get_bus(pipeline);
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    rc = 1;
  // The run ends on the timeout; an error or an EOS (a target that exited) ends it early.
  GstMessage *msg = rc ? nullptr
                       : gst_bus_timed_pop_filtered(
                             bus, static_cast<GstClockTime>((seconds + warmup) * GST_SECOND),
                             static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
  if (!msg && rc)
    msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  if (msg) {
    GError *error = nullptr;
    gchar *debug = nullptr;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR)
      gst_message_parse_error(msg, &error, &debug);
    std::fprintf(stderr, "pipewire-latency: %s (%s)\n",
                 error ? error->message : "unexpected end of stream", debug ? debug : "");
    g_clear_error(&error);
    g_free(debug);
    gst_message_unref(msg);
    rc = 1;
  }
  // In NULL the streaming threads have ended, so the probes have run their last; the stats
  // stay until the next start.
  gst_element_set_state(pipeline, GST_STATE_NULL);
  guint64 dropped = 0, pushed = 0;
  for (Branch &b : branches) {
    dropped += stat_of(b.src, "frames-dropped");
    pushed += stat_of(b.src, "chunks-pushed");
  }
  gst_object_unref(bus);
  gst_object_unref(pipeline);

  std::vector<double> all;
  double warmup_max = 0.0;
  size_t chunks = 0;
  for (const Branch &b : branches) {
    all.insert(all.end(), b.steady_ms.begin(), b.steady_ms.end());
    warmup_max = std::max(warmup_max, b.warmup_max_ms);
    chunks += b.chunks;
  }
  std::sort(all.begin(), all.end());
  std::printf("{\"sources\": %zu, \"chunks\": %zu, \"chunks_pushed\": %" G_GUINT64_FORMAT
              ", \"steady_chunks\": %zu, \"p50_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f, "
              "\"warmup_max_ms\": %.4f, \"frames_dropped\": %" G_GUINT64_FORMAT "}\n",
              branches.size(), chunks, pushed, all.size(), percentile(all, 0.50),
              percentile(all, 0.99), all.empty() ? 0.0 : all.back(), warmup_max, dropped);
  return rc;
}
