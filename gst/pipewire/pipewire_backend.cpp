#include "pipewire_backend.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <pipewire/pipewire.h>
#include <spa/param/audio/format-utils.h>
#include <spa/param/audio/raw.h>
#include <spa/pod/builder.h>
#include <spa/utils/result.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "core/monotonic_clock.h"
#include "proc_tree.h"

namespace procaudio {

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;
// Before the first packet says otherwise: PipeWire's default quantum.
constexpr uint64_t kDefaultQuantumNs = 1024ull * kNsPerSec / 48000;
// How long open()/start() wait for the server, at most.
constexpr int kServerTimeoutMs = 5000;
// Idle ticks: how often the data loop checks that packets still come.
constexpr uint64_t kIdleTickNs = 100'000'000;
// Frames of the mono downmix scratch buffer (a PipeWire buffer larger than this is delivered
// in pieces).
constexpr uint32_t kScratchFrames = 65536;
// Buffers taken from the stream in one process call (normally exactly one).
constexpr int kMaxBuffersPerCycle = 16;

std::once_flag g_pw_init_once;

void ensure_pw_init() {
  std::call_once(g_pw_init_once, [] { pw_init(nullptr, nullptr); });
}

uint32_t parse_u32(const char *text) {
  if (text == nullptr || *text == '\0') {
    return 0;
  }
  char *end = nullptr;
  const unsigned long value = std::strtoul(text, &end, 10);
  return end != text ? static_cast<uint32_t>(value) : 0;
}

bool parse_bool(const char *text) {
  return text != nullptr && (std::strcmp(text, "true") == 0 || std::strcmp(text, "1") == 0);
}

std::string env_or(const char *name, const char *fallback) {
  const char *value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Where libpipewire looks for the server (protocol-native's rules: PIPEWIRE_REMOTE, default
// "pipewire-0", in PIPEWIRE_RUNTIME_DIR, else XDG_RUNTIME_DIR, else USERPROFILE), for messages.
// Empty when no directory is set.
std::string socket_path() {
  const std::string remote = env_or("PIPEWIRE_REMOTE", "pipewire-0");
  if (!remote.empty() && remote[0] == '/') {
    return remote;
  }
  const char *dirs[] = {"PIPEWIRE_RUNTIME_DIR", "XDG_RUNTIME_DIR", "USERPROFILE"};
  for (const char *dir : dirs) {
    const char *value = std::getenv(dir);
    if (value != nullptr && *value != '\0') {
      return std::string(value) + "/" + remote;
    }
  }
  return {};
}

std::string describe_socket() {
  const std::string path = socket_path();
  return path.empty() ? env_or("PIPEWIRE_REMOTE", "pipewire-0") + " (no runtime directory set)"
                      : path;
}

// Which of our two input ports (FL, FR) a target output port of audio.channel `channel`
// feeds. Center and unknown channels feed both, LFE none.
bool channel_feeds(const std::string &channel, const std::string &ours) {
  if (channel == ours) {
    return true;
  }
  if (channel.find("LFE") != std::string::npos) {
    return false;
  }
  static const char *const kCenter[] = {"MONO", "FC", "RC", "TC", "TFC", "TRC", "BC", ""};
  for (const char *center : kCenter) {
    if (channel == center) {
      return true;
    }
  }
  const auto side = channel.find_last_of("LR");
  if (side == std::string::npos) {
    return true;  // AUX0, UNK, ...: no side, so both
  }
  return (channel[side] == 'L') == (ours == "FL");
}

// ------------------------------------------------------------------------------------------
// The shared connection.
//
// One per PipeWire server (socket) and process, shared by every PipeWireBackend talking to
// that server, reference-counted like pipewiresrc's GstPipeWireCore: the thread loop, the
// context (and with it the one data loop every capture stream of this process runs on), the
// core and the registry watch. Each backend keeps its own capture stream, its own decisions
// about which stream nodes it captures, and its own links.
//
// Why: a connection of its own per backend meant a data-loop thread of its own per capture
// stream, each woken by the graph every cycle; with ten sources that was ten threads woken
// ~50 times a second each where one thread serves them all.
//
// Threads and locks:
//   - the connection's thread loop lock guards all of it and every attached backend's
//     PipeWire state (stream, links, decisions); registry and core events run under it;
//   - every pw_loop_invoke() onto the shared data loop is made with that lock held:
//     libspa's invoke queue (0.3.x) has a single writer and a single ack eventfd, so two
//     threads invoking at once would corrupt it or steal each other's acks;
//   - the data loop thread never takes the thread loop lock (and the sinks it calls never
//     block), so holding the lock across a blocking invoke cannot deadlock;
//   - the process-wide table of connections has its own mutex, taken only by open() (never
//     on a loop thread, never while holding a loop lock);
//   - a connection is destroyed by whoever drops the last reference: a backend's close(), on
//     the caller's thread, never on a loop thread.
// Loss: a core error marks the connection lost (an atomic), every attached backend gets
// kDeviceLost; the table then hands out a new connection to the next open(); the lost one
// lives until its last backend closes.
struct Connection {
  using Backend = PipeWireBackend::Impl;

  struct Client {
    uint32_t sec_pid = 0;
    uint32_t app_pid = 0;
  };
  // An application output stream node (Stream/Output/Audio).
  struct Node {
    Connection *conn = nullptr;
    uint32_t id = 0;
    uint32_t client_id = 0;
    uint32_t app_pid = 0;
    std::string name;
    pw_proxy *proxy = nullptr;
    spa_hook listener{};
    bool have_info = false;
    bool resolved = false;  // `pid` is known (0: no process could be named)
    uint32_t pid = 0;
    uint64_t last_port_ns = 0;  // when its latest output port appeared
  };
  struct Port {
    uint32_t node_id = 0;
    bool output = false;
    bool monitor = false;
    std::string channel;
  };

  Connection() = default;
  ~Connection() { teardown(); }
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  // The connection to the server the environment names now: the shared one, or a new one
  // when there is none yet or the one there is was lost. `fresh`: made by this call.
  static CaptureError acquire(const Logger &log, std::shared_ptr<Connection> *out, bool *fresh);

  // Registry and core events go to `backend` from now on; it decides on every stream node
  // known. A shared connection is synced first (two round trips, as a new one was).
  CaptureError attach(Backend *backend, bool fresh);
  // No event reaches `backend` after this returns, and nothing it queued on the data loop
  // is still pending.
  void detach(Backend *backend);

  // ---- the thread loop (locked)
  void lock() { pw_thread_loop_lock(loop); }
  void unlock() { pw_thread_loop_unlock(loop); }
  void signal() { pw_thread_loop_signal(loop, false); }

  template <typename Done>
  bool wait_until(Done done, int timeout_ms) {
    struct timespec abstime;
    pw_thread_loop_get_time(loop, &abstime, static_cast<int64_t>(timeout_ms) * 1'000'000);
    while (!done()) {
      if (pw_thread_loop_timed_wait_full(loop, &abstime) == -ETIMEDOUT) {
        return done();
      }
    }
    return true;
  }

  bool roundtrip(int timeout_ms) {
    const int seq = pw_core_sync(core, PW_ID_CORE, 0);
    if (seq < 0) {
      return false;
    }
    pending_syncs.insert(seq);
    wait_until([this, seq] { return pending_syncs.count(seq) == 0 || lost.load(); }, timeout_ms);
    const bool done = pending_syncs.erase(seq) == 0;
    return done && !lost.load();
  }

  // Thread loop locked. Two round trips: the first brings every global, the second the
  // infos of the stream nodes bound on the way. An error if the server does not answer.
  CaptureError sync_all() {
    if (roundtrip(kServerTimeoutMs) && roundtrip(kServerTimeoutMs)) {
      return {};
    }
    const bool was_lost = lost.load();
    return {was_lost ? ErrorKind::kBackendUnavailable : ErrorKind::kTimeout,
            "PipeWire on " + key + " did not answer" +
                (was_lost ? ": the connection failed." : " within 5 s."),
            was_lost ? lost_error : "pw_core_sync timed out"};
  }

  // ---- events (thread loop)
  static void on_core_done(void *data, uint32_t id, int seq);
  static void on_core_error(void *data, uint32_t id, int seq, int res, const char *message);
  static void on_global(void *data, uint32_t id, uint32_t permissions, const char *type,
                        uint32_t version, const struct spa_dict *props);
  static void on_global_remove(void *data, uint32_t id);
  static void on_node_info(void *data, const struct pw_node_info *info);
  void add_stream_node(uint32_t id, const struct spa_dict *props);
  void destroy_node(Node *node);
  void remove_node(Node *node);
  void resolve(Node &node);
  void resolve_pending();

  // ---- the data loop: one idle tick for every armed backend
  static void on_idle_tick(void *data, uint64_t expirations);
  static int do_barrier(struct spa_loop *, bool, uint32_t, const void *, size_t, void *) {
    return 0;
  }
  static int do_destroy_idle_timer(struct spa_loop *, bool, uint32_t, const void *, size_t,
                                   void *user) {
    auto *self = static_cast<Connection *>(user);
    pw_loop_destroy_source(self->data_loop, self->idle_timer);
    self->idle_timer = nullptr;
    return 0;
  }

  CaptureError connect(const Logger &log);
  void teardown();

  std::string key;  // the socket, as describe_socket() named it

  // ---- PipeWire objects; touched with the thread loop locked (or on its thread)
  pw_thread_loop *loop = nullptr;
  pw_context *context = nullptr;
  pw_core *core = nullptr;
  spa_hook core_listener{};
  pw_registry *registry = nullptr;
  spa_hook registry_listener{};
  pw_loop *data_loop = nullptr;
  std::atomic<bool> lost{false};  // set on the thread loop, read anywhere
  std::string lost_error;         // set once, before `lost`
  std::set<int> pending_syncs;
  std::map<uint32_t, Client> clients;
  std::map<uint32_t, Node *> nodes;
  std::map<uint32_t, Port> ports;
  std::vector<Backend *> backends;  // attached

  // ---- data loop only
  std::vector<Backend *> armed;  // backends whose sinks are live
  spa_source *idle_timer = nullptr;
};

std::mutex &connections_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::map<std::string, std::weak_ptr<Connection>> &connections() {
  static std::map<std::string, std::weak_ptr<Connection>> table;
  return table;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// One backend: its target, capture stream, decisions and links.

struct PipeWireBackend::Impl {
  explicit Impl(Logger l) : log(std::move(l)) {}

  using Node = Connection::Node;
  using Port = Connection::Port;

  Logger log;

  // ---- set by open(), read-only afterwards
  TargetSpec target;
  bool has_target = false;
  uint32_t root_pid = 0;
  uint32_t self_pid = 0;
  proc::ExitWatch exit_watch;
  std::shared_ptr<Connection> conn;  // open() to close(), caller thread

  // ---- own PipeWire state; touched with the connection's thread loop locked
  pw_stream *stream = nullptr;
  spa_hook stream_listener{};
  pw_stream_state stream_state = PW_STREAM_STATE_UNCONNECTED;
  std::string stream_error;
  bool format_ok = false;
  bool format_refused = false;
  uint32_t own_node_id = SPA_ID_INVALID;
  uint64_t own_port_ns = 0;  // when our latest input port appeared
  std::atomic<uint32_t> own_node_id_public{SPA_ID_INVALID};
  bool capturing = false;  // between start() and stop(): links are wanted
  // Stream nodes decided (once, when each appeared): id -> captured by this backend.
  std::map<uint32_t, bool> decided;

  struct Link {
    PipeWireBackend::Impl *owner = nullptr;
    uint32_t out_port = 0;
    uint32_t in_port = 0;
    uint32_t out_node = 0;
    pw_proxy *proxy = nullptr;
    spa_hook listener{};
    bool bound = false;
    bool failed = false;
    uint64_t requested_ns = 0;
  };
  std::map<std::pair<uint32_t, uint32_t>, Link *> links;  // (output port, input port)

  // Statistics, written on the thread loop, read anywhere.
  mutable std::mutex stats_mutex;
  LinkStats stats;

  // ---- data loop state: only touched on the data loop thread (or before it can run)
  CaptureSink *sink = nullptr;
  bool finished = false;
  CaptureConfig config;
  uint32_t out_channels = 2;  // what the sink gets; PipeWire always gives us 2 (FL, FR)
  uint64_t last_activity_ns = 0;
  spa_source *exit_source = nullptr;
  std::vector<uint8_t> scratch;
  std::atomic<uint64_t> quantum_ns{kDefaultQuantumNs};

  // An error found on the thread loop, waiting for the data loop to hand it to the sink.
  std::mutex error_mutex;
  CaptureError pending_error;

  // Hands a fatal error to the sink, on the data loop. First error wins. Thread loop locked.
  void raise_error(CaptureError error) {
    {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (pending_error) {
        return;
      }
      pending_error = std::move(error);
    }
    pw_loop_invoke(conn->data_loop, &Impl::deliver_error, 0, nullptr, 0, false, this);
  }

  static int deliver_error(struct spa_loop *, bool, uint32_t, const void *, size_t, void *user) {
    auto *self = static_cast<Impl *>(user);
    CaptureError error;
    {
      std::lock_guard<std::mutex> lock(self->error_mutex);
      error = self->pending_error;
    }
    if (self->sink != nullptr && !self->finished && error) {
      self->finished = true;
      PA_ERROR(self->log, "capture failed: %s (%s)", error.message.c_str(), error.detail.c_str());
      self->sink->on_error(error);
    }
    return 0;
  }

  // ----------------------------------------------------------------- registry (thread loop)

  // Is this stream node one we capture? Decided once per node: when its process is known,
  // or (`force`, at open()) now, with whatever is known.
  void decide(const Node &node, bool force = false) {
    if (decided.count(node.id) != 0 || (!node.resolved && !force)) {
      return;
    }
    const uint32_t pid = node.resolved ? node.pid : 0;
    bool captured;
    const bool in_tree = has_target && pid != 0 && proc::is_in_tree(pid, root_pid);
    if (!has_target) {
      captured = pid != self_pid;
    } else if (target.mode == TargetMode::kIncludeTree) {
      captured = in_tree;
    } else {
      captured = !in_tree && pid != self_pid;
    }
    decided[node.id] = captured;
    if (log.wants(LogLevel::kInfo)) {  // proc::comm reads /proc: only for a reader
      PA_INFO(log, "stream node %u '%s' of pid %u (%s): %s", node.id, node.name.c_str(), pid,
              pid ? proc::comm(pid).c_str() : "unknown process",
              captured ? "captured" : "not captured");
    }
    if (capturing) {
      count_stream(captured);
    }
    if (captured) {
      update_links();
    }
  }

  void count_stream(bool captured) {
    std::lock_guard<std::mutex> lock(stats_mutex);
    (captured ? stats.streams_captured : stats.streams_skipped)++;
  }

  void on_port_added(const Port &port) {
    if (!port.output && port.node_id == own_node_id) {
      own_port_ns = monotonic_now_ns();
    }
    // Only our own ports or those of a node we capture can make new links.
    const auto decision = decided.find(port.node_id);
    if (port.node_id == own_node_id || (decision != decided.end() && decision->second)) {
      update_links();
    }
  }

  void on_node_removed(const Node &node) {
    PA_DEBUG(log, "stream node %u '%s' (pid %u) is gone", node.id, node.name.c_str(), node.pid);
    decided.erase(node.id);
  }

  void on_port_removed(uint32_t id) {
    // The server removed the port's links with it; forget ours.
    bool changed = false;
    for (auto it = links.begin(); it != links.end();) {
      if (it->first.first == id || it->first.second == id) {
        destroy_link(it->second);
        it = links.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (changed) {
      publish_link_count();
    }
  }

  // ----------------------------------------------------------------- links

  void update_links() {
    if (!capturing || own_node_id == SPA_ID_INVALID || conn->lost.load()) {
      return;
    }
    std::vector<std::pair<uint32_t, const Port *>> inputs;
    for (const auto &entry : conn->ports) {
      if (entry.second.node_id == own_node_id && !entry.second.output) {
        inputs.emplace_back(entry.first, &entry.second);
      }
    }
    if (inputs.empty()) {
      return;  // our ports are not there yet; their globals call us again
    }
    for (const auto &entry : conn->ports) {
      const Port &out = entry.second;
      if (!out.output || out.monitor) {
        continue;
      }
      auto decision = decided.find(out.node_id);
      if (decision == decided.end() || !decision->second) {
        continue;
      }
      for (const auto &in : inputs) {
        // A 1-channel capture still takes FL and FR from PipeWire and downmixes itself, so
        // every target channel has a place.
        if (!channel_feeds(out.channel, in.second->channel)) {
          continue;
        }
        const auto key = std::make_pair(entry.first, in.first);
        if (links.count(key) == 0) {
          make_link(entry.first, out.node_id, in.first);
        }
      }
    }
  }

  void make_link(uint32_t out_port, uint32_t out_node, uint32_t in_port) {
    pw_properties *props = pw_properties_new(nullptr, nullptr);
    pw_properties_setf(props, PW_KEY_LINK_OUTPUT_NODE, "%u", out_node);
    pw_properties_setf(props, PW_KEY_LINK_OUTPUT_PORT, "%u", out_port);
    pw_properties_setf(props, PW_KEY_LINK_INPUT_NODE, "%u", own_node_id);
    pw_properties_setf(props, PW_KEY_LINK_INPUT_PORT, "%u", in_port);
    // The link dies with this client, never outlives the capture (stop() destroys it
    // before that: the client is shared).
    pw_properties_set(props, PW_KEY_OBJECT_LINGER, "false");
    auto *link = new Link();
    link->owner = this;
    link->out_port = out_port;
    link->in_port = in_port;
    link->out_node = out_node;
    link->requested_ns = monotonic_now_ns();
    link->proxy = static_cast<pw_proxy *>(pw_core_create_object(
        conn->core, "link-factory", PW_TYPE_INTERFACE_Link, PW_VERSION_LINK, &props->dict, 0));
    pw_properties_free(props);
    if (link->proxy == nullptr) {
      const int err = errno;
      PA_WARNING(log, "cannot link port %u to port %u: %s", out_port, in_port,
                 proc::errno_text(err).c_str());
      link->failed = true;
      links[{out_port, in_port}] = link;
      return;
    }
    static const pw_proxy_events proxy_events = [] {
      pw_proxy_events events{};
      events.version = PW_VERSION_PROXY_EVENTS;
      events.bound = &Impl::on_link_bound;
      events.error = &Impl::on_link_error;
      return events;
    }();
    pw_proxy_add_listener(link->proxy, &link->listener, &proxy_events, link);
    links[{out_port, in_port}] = link;
    PA_DEBUG(log, "linking node %u port %u -> node %u port %u", out_node, out_port, own_node_id,
             in_port);
  }

  static void on_link_bound(void *data, uint32_t global_id) {
    auto *link = static_cast<Link *>(data);
    Impl *self = link->owner;
    if (link->bound) {
      return;
    }
    link->bound = true;
    const uint64_t now = monotonic_now_ns();
    // From when the link could first have been made: both its ports existed.
    uint64_t since = link->requested_ns;
    auto node = self->conn->nodes.find(link->out_node);
    if (node != self->conn->nodes.end() && node->second->last_port_ns != 0) {
      since = std::min(since, std::max(node->second->last_port_ns, self->own_port_ns));
    }
    PA_DEBUG(self->log, "link %u up: port %u -> port %u, %.2f ms after the port appeared",
             global_id, link->out_port, link->in_port, (now - since) / 1e6);
    {
      std::lock_guard<std::mutex> lock(self->stats_mutex);
      self->stats.links_made++;
      self->stats.max_link_delay_ns = std::max(self->stats.max_link_delay_ns, now - since);
    }
    self->publish_link_count();
  }

  static void on_link_error(void *data, int seq, int res, const char *message) {
    auto *link = static_cast<Link *>(data);
    Impl *self = link->owner;
    PA_WARNING(self->log, "PipeWire refused the link port %u -> port %u: %s (%s)", link->out_port,
               link->in_port, message ? message : "", spa_strerror(res));
    if (!link->failed) {
      link->failed = true;
      std::lock_guard<std::mutex> lock(self->stats_mutex);
      self->stats.links_failed++;
    }
  }

  void destroy_link(Link *link) {
    if (link->proxy != nullptr) {
      spa_hook_remove(&link->listener);
      // Destroying the proxy of a (non-lingering) object this client created destroys the
      // object on the server too; if the server already removed it, this only frees the proxy.
      pw_proxy_destroy(link->proxy);
      link->proxy = nullptr;
    }
    delete link;
  }

  void destroy_all_links() {
    for (auto &entry : links) {
      destroy_link(entry.second);
    }
    links.clear();
    publish_link_count();
  }

  void publish_link_count() {
    uint32_t active = 0;
    for (const auto &entry : links) {
      active += entry.second->bound && !entry.second->failed ? 1 : 0;
    }
    std::lock_guard<std::mutex> lock(stats_mutex);
    stats.links_active = active;
  }

  // ----------------------------------------------------------------- stream events

  static void on_stream_state(void *data, enum pw_stream_state old, enum pw_stream_state state,
                              const char *error) {
    auto *self = static_cast<Impl *>(data);
    PA_DEBUG(self->log, "capture stream: %s -> %s%s%s", pw_stream_state_as_string(old),
             pw_stream_state_as_string(state), error ? ": " : "", error ? error : "");
    self->stream_state = state;
    if (state == PW_STREAM_STATE_ERROR) {
      self->stream_error = error ? error : "unknown error";
      if (self->capturing) {
        self->raise_error({ErrorKind::kDeviceLost,
                           "PipeWire stopped the capture stream: " + self->stream_error,
                           "pw_stream state error: " + self->stream_error});
      }
    } else if (state == PW_STREAM_STATE_UNCONNECTED && self->capturing && old != state) {
      self->raise_error({ErrorKind::kDeviceLost,
                         "PipeWire disconnected the capture stream (the daemon went away?).",
                         "pw_stream state unconnected"});
    }
    if (state != PW_STREAM_STATE_CONNECTING && self->stream != nullptr) {
      const uint32_t id = pw_stream_get_node_id(self->stream);
      if (id != SPA_ID_INVALID && id != self->own_node_id) {
        self->own_node_id = id;
        self->own_port_ns = monotonic_now_ns();  // its ports are usable from now on
        self->own_node_id_public = id;
        self->update_links();
      }
    }
    self->conn->signal();
  }

  static void on_stream_param_changed(void *data, uint32_t id, const struct spa_pod *param) {
    auto *self = static_cast<Impl *>(data);
    if (id != SPA_PARAM_Format || param == nullptr) {
      return;
    }
    struct spa_audio_info_raw info;
    std::memset(&info, 0, sizeof info);
    if (spa_format_audio_raw_parse(param, &info) < 0) {
      return;
    }
    const spa_audio_format want = self->config.format.sample_format == SampleFormat::kF32LE
                                      ? SPA_AUDIO_FORMAT_F32_LE
                                      : SPA_AUDIO_FORMAT_S16_LE;
    const bool ok =
        info.format == want && info.rate == self->config.format.rate && info.channels == 2;
    PA_DEBUG(self->log, "capture stream format: %s, %u Hz, %u channels%s",
             info.format == SPA_AUDIO_FORMAT_F32_LE   ? "F32LE"
             : info.format == SPA_AUDIO_FORMAT_S16_LE ? "S16LE"
                                                      : "other",
             info.rate, info.channels, ok ? "" : " (not what was asked)");
    self->format_ok = ok;
    self->format_refused = !ok;
    self->conn->signal();
  }

  // ----------------------------------------------------------------- data loop

  // RT: no allocation, no lock, no logging. Runs once per graph cycle.
  static void on_process(void *data) {
    auto *self = static_cast<Impl *>(data);
    pw_stream *stream = self->stream;
    const uint64_t arrival = monotonic_now_ns();
    pw_buffer *buffers[kMaxBuffersPerCycle];
    int count = 0;
    while (pw_buffer *b = pw_stream_dequeue_buffer(stream)) {
      if (count < kMaxBuffersPerCycle) {
        buffers[count++] = b;
      } else {
        pw_stream_queue_buffer(stream, b);  // cannot happen with RT_PROCESS; drop
      }
    }
    if (count == 0) {
      return;
    }
    if (self->sink != nullptr && !self->finished) {
      self->deliver(buffers, count, arrival);
    }
    for (int i = 0; i < count; ++i) {
      pw_stream_queue_buffer(stream, buffers[i]);
    }
  }

  void deliver(pw_buffer **buffers, int count, uint64_t arrival) {
    const uint32_t rate = config.format.rate;
    const uint32_t in_frame_bytes = bytes_per_sample(config.format.sample_format) * 2;
    // Graph time of this cycle: when the driver started it, on CLOCK_MONOTONIC. The frames
    // that reach us now are the frames the graph renders in this cycle.
    struct pw_time time;
    std::memset(&time, 0, sizeof time);
    const bool have_time = pw_stream_get_time_n(stream, &time, sizeof time) == 0 && time.now > 0;

    uint32_t frames[kMaxBuffersPerCycle];
    uint64_t total = 0;
    for (int i = 0; i < count; ++i) {
      const spa_buffer *buffer = buffers[i]->buffer;
      frames[i] = 0;
      if (buffer->n_datas == 0 || buffer->datas[0].data == nullptr ||
          buffer->datas[0].chunk == nullptr) {
        continue;
      }
      const spa_data &d = buffer->datas[0];
      const uint32_t offset = std::min(d.chunk->offset, d.maxsize);
      const uint32_t size = std::min(d.chunk->size, d.maxsize - offset);
      frames[i] = size / in_frame_bytes;
      total += frames[i];
    }
    if (total == 0) {
      return;
    }
    // The last buffer starts at the cycle's time; earlier ones (never, with RT_PROCESS) before.
    // The resampler (when our rate differs from the graph's) holds `buffered` frames back, in
    // graph-rate frames (time.rate is 1/graph rate): our first frame is that much older.
    uint64_t start_ns;
    uint32_t flags = kPacketNone;
    if (have_time) {
      start_ns = static_cast<uint64_t>(time.now);
      const uint64_t resampler_ns =
          time.rate.denom != 0 ? time.buffered * kNsPerSec * time.rate.num / time.rate.denom : 0;
      start_ns -= std::min(start_ns, resampler_ns + (total - frames[count - 1]) * kNsPerSec / rate);
    } else {
      start_ns = arrival - std::min(arrival, total * kNsPerSec / rate);
      flags |= kPacketTimestampError;
    }
    // No discontinuity is made up here; device times are the graph clock's, as they are:
    //  - the quantum changes: a timer-driven graph schedules the next cycle with the duration it
    //    had when it scheduled, so the first cycle of a new quantum is followed after the *old*
    //    quantum: device times overlap (it grew) or leave a hole (it shrank) by the difference,
    //    once, and even out when the quantum changes back;
    //  - an overloaded graph: a cycle runs late (two packets then carry the same cycle time) or
    //    is skipped.
    // The timeline takes steps within its threshold as jitter and fills larger gaps. Only
    // PipeWire's own "corrupted" mark on a chunk is reported as a discontinuity.
    uint64_t device_ns = start_ns;
    for (int i = 0; i < count; ++i) {
      if (frames[i] == 0) {
        continue;
      }
      const spa_data &d = buffers[i]->buffer->datas[0];
      const uint32_t offset = std::min(d.chunk->offset, d.maxsize);
      const uint8_t *bytes = static_cast<const uint8_t *>(d.data) + offset;
      uint32_t chunk_flags = flags;
      if ((d.chunk->flags & SPA_CHUNK_FLAG_CORRUPTED) != 0) {
        chunk_flags |= kPacketDiscontinuity;
      }
      uint32_t done = 0;
      while (done < frames[i]) {
        const uint32_t n =
            out_channels == 2 ? frames[i] - done : std::min(frames[i] - done, kScratchFrames);
        Packet packet;
        packet.frames = n;
        packet.flags = chunk_flags;
        packet.device_time_ns = device_ns + static_cast<uint64_t>(done) * kNsPerSec / rate;
        packet.arrival_time_ns = arrival;
        if (out_channels == 2) {
          packet.data = bytes + static_cast<size_t>(done) * in_frame_bytes;
        } else {
          downmix(bytes + static_cast<size_t>(done) * in_frame_bytes, n);
          packet.data = scratch.data();
        }
        sink->on_packet(packet);
        chunk_flags &= ~static_cast<uint32_t>(kPacketDiscontinuity);
        done += n;
      }
      device_ns += static_cast<uint64_t>(frames[i]) * kNsPerSec / rate;
      flags &= ~static_cast<uint32_t>(kPacketDiscontinuity);
    }
    last_activity_ns = arrival;
    quantum_ns.store(total * kNsPerSec / rate, std::memory_order_relaxed);
  }

  // Stereo -> mono, (L + R) / 2, into the scratch buffer allocated by start().
  void downmix(const uint8_t *in, uint32_t frames) {
    if (config.format.sample_format == SampleFormat::kF32LE) {
      const float *src = reinterpret_cast<const float *>(in);
      float *dst = reinterpret_cast<float *>(scratch.data());
      for (uint32_t i = 0; i < frames; ++i) {
        dst[i] = 0.5f * (src[2 * i] + src[2 * i + 1]);
      }
    } else {
      const int16_t *src = reinterpret_cast<const int16_t *>(in);
      int16_t *dst = reinterpret_cast<int16_t *>(scratch.data());
      for (uint32_t i = 0; i < frames; ++i) {
        dst[i] = static_cast<int16_t>((static_cast<int32_t>(src[2 * i]) + src[2 * i + 1]) / 2);
      }
    }
  }

  static void on_target_exit(void *data, int fd, uint32_t mask) {
    auto *self = static_cast<Impl *>(data);
    // Once is enough: stop watching.
    if (self->exit_source != nullptr) {
      pw_loop_destroy_source(self->conn->data_loop, self->exit_source);
      self->exit_source = nullptr;
    }
    if (self->sink != nullptr && !self->finished) {
      self->finished = true;
      PA_INFO(self->log, "target pid %u exited: end of capture", self->root_pid);
      self->sink->on_target_exit();
    }
  }

  // A packet arrives within a cycle of its capture time; 4 quanta (>= 50 ms) is a safe bound.
  uint64_t idle_margin() const { return std::max<uint64_t>(4 * quantum_ns.load(), 50'000'000); }

  // From the connection's idle tick (data loop).
  void idle_check(uint64_t now) {
    if (sink == nullptr || finished) {
      return;
    }
    if (now - last_activity_ns >= idle_margin()) {
      sink->on_idle(now);
    }
  }

  struct Arm {
    Impl *self;
    CaptureSink *sink;
    bool watch_exit;
  };

  // On the data loop: start handing packets to `sink`, watch the target, tick when idle.
  static int do_arm(struct spa_loop *, bool, uint32_t, const void *data, size_t, void *) {
    const Arm *arm = static_cast<const Arm *>(data);
    Impl *self = arm->self;
    Connection &c = *self->conn;
    self->sink = arm->sink;
    self->finished = false;
    self->last_activity_ns = monotonic_now_ns();
    if (arm->watch_exit && self->exit_watch.fd() >= 0) {
      self->exit_source =
          pw_loop_add_io(c.data_loop, self->exit_watch.fd(), SPA_IO_IN | SPA_IO_HUP | SPA_IO_ERR,
                         false, &Impl::on_target_exit, self);
    }
    if (std::find(c.armed.begin(), c.armed.end(), self) == c.armed.end()) {
      c.armed.push_back(self);
    }
    // One tick for all the backends on this connection.
    if (c.idle_timer == nullptr) {
      c.idle_timer = pw_loop_add_timer(c.data_loop, &Connection::on_idle_tick, &c);
      if (c.idle_timer != nullptr) {
        struct timespec value = {0, static_cast<long>(kIdleTickNs)};
        struct timespec interval = {0, static_cast<long>(kIdleTickNs)};
        pw_loop_update_timer(c.data_loop, c.idle_timer, &value, &interval, false);
      }
    }
    return 0;
  }

  // On the data loop: after this returns, the sink is never called again.
  static int do_disarm(struct spa_loop *, bool, uint32_t, const void *, size_t, void *user) {
    auto *self = static_cast<Impl *>(user);
    Connection &c = *self->conn;
    self->sink = nullptr;
    self->finished = true;
    if (self->exit_source != nullptr) {
      pw_loop_destroy_source(c.data_loop, self->exit_source);
      self->exit_source = nullptr;
    }
    c.armed.erase(std::remove(c.armed.begin(), c.armed.end(), self), c.armed.end());
    if (c.armed.empty() && c.idle_timer != nullptr) {
      pw_loop_destroy_source(c.data_loop, c.idle_timer);
      c.idle_timer = nullptr;
    }
    return 0;
  }
};

// ------------------------------------------------------------------------------------------
// Connection: events

void Connection::on_core_done(void *data, uint32_t id, int seq) {
  auto *self = static_cast<Connection *>(data);
  if (id == PW_ID_CORE && self->pending_syncs.erase(seq) != 0) {
    self->signal();
  }
}

void Connection::on_core_error(void *data, uint32_t id, int seq, int res, const char *message) {
  auto *self = static_cast<Connection *>(data);
  if (id != PW_ID_CORE) {
    // A proxy's error (a link the server refused, ...); its own listener handles it.
    for (Backend *b : self->backends) {
      PA_DEBUG(b->log, "PipeWire error on object %u: %s (%s)", id, message ? message : "",
               spa_strerror(res));
    }
    return;
  }
  const bool lost = res == -EPIPE || res == -ECONNRESET || res == -ENOTCONN;
  for (Backend *b : self->backends) {
    PA_WARNING(b->log, "PipeWire core error: %s (%s)%s", message ? message : "", spa_strerror(res),
               lost ? ": connection lost" : "");
  }
  if (!self->lost.load()) {
    self->lost_error = std::string(message ? message : "") + ": " + proc::errno_text(res);
    self->lost = true;  // the next open() makes a new connection
    for (Backend *b : self->backends) {
      b->raise_error({ErrorKind::kDeviceLost,
                      "The connection to PipeWire was lost (the PipeWire daemon stopped or "
                      "restarted); capture ended.",
                      "PipeWire core error on " + self->key + ": " + self->lost_error});
    }
  }
  self->signal();
}

void Connection::on_global(void *data, uint32_t id, uint32_t permissions, const char *type,
                           uint32_t version, const struct spa_dict *props) {
  auto *self = static_cast<Connection *>(data);
  if (props == nullptr) {
    return;
  }
  if (std::strcmp(type, PW_TYPE_INTERFACE_Client) == 0) {
    Client &client = self->clients[id];
    client.sec_pid = parse_u32(spa_dict_lookup(props, PW_KEY_SEC_PID));
    client.app_pid = parse_u32(spa_dict_lookup(props, PW_KEY_APP_PROCESS_ID));
    self->resolve_pending();
  } else if (std::strcmp(type, PW_TYPE_INTERFACE_Node) == 0) {
    const char *media_class = spa_dict_lookup(props, PW_KEY_MEDIA_CLASS);
    if (media_class == nullptr || std::strcmp(media_class, "Stream/Output/Audio") != 0) {
      return;
    }
    self->add_stream_node(id, props);
  } else if (std::strcmp(type, PW_TYPE_INTERFACE_Port) == 0) {
    Port port;
    port.node_id = parse_u32(spa_dict_lookup(props, PW_KEY_NODE_ID));
    const char *direction = spa_dict_lookup(props, PW_KEY_PORT_DIRECTION);
    port.output = direction != nullptr && std::strcmp(direction, "out") == 0;
    port.monitor = parse_bool(spa_dict_lookup(props, PW_KEY_PORT_MONITOR));
    const char *channel = spa_dict_lookup(props, PW_KEY_AUDIO_CHANNEL);
    port.channel = channel ? channel : "";
    const Port &stored = self->ports[id] = port;
    if (port.output) {
      auto node = self->nodes.find(port.node_id);
      if (node != self->nodes.end()) {
        node->second->last_port_ns = monotonic_now_ns();
      }
    }
    for (Backend *b : self->backends) {
      b->on_port_added(stored);
    }
  }
}

void Connection::on_global_remove(void *data, uint32_t id) {
  auto *self = static_cast<Connection *>(data);
  self->clients.erase(id);
  auto node = self->nodes.find(id);
  if (node != self->nodes.end()) {
    self->remove_node(node->second);
    self->nodes.erase(node);
  }
  if (self->ports.erase(id) != 0) {
    for (Backend *b : self->backends) {
      b->on_port_removed(id);
    }
  }
}

void Connection::add_stream_node(uint32_t id, const struct spa_dict *props) {
  auto *node = new Node();
  node->conn = this;
  node->id = id;
  node->client_id = parse_u32(spa_dict_lookup(props, PW_KEY_CLIENT_ID));
  node->app_pid = parse_u32(spa_dict_lookup(props, PW_KEY_APP_PROCESS_ID));
  const char *name = spa_dict_lookup(props, PW_KEY_NODE_NAME);
  node->name = name ? name : "";
  // The global's properties are a subset: a pipewire-pulse client's stream says whose it is
  // (application.process.id) only in the node's full info, so bind the node and read it.
  node->proxy = static_cast<pw_proxy *>(
      pw_registry_bind(registry, id, PW_TYPE_INTERFACE_Node, PW_VERSION_NODE, 0));
  auto old = nodes.find(id);
  if (old != nodes.end()) {
    remove_node(old->second);
  }
  nodes[id] = node;
  if (node->proxy == nullptr) {
    node->have_info = true;  // decide from what the global said
    resolve(*node);
    return;
  }
  static const pw_node_events node_events = [] {
    pw_node_events events{};
    events.version = PW_VERSION_NODE_EVENTS;
    events.info = &Connection::on_node_info;
    return events;
  }();
  pw_node_add_listener(reinterpret_cast<pw_node *>(node->proxy), &node->listener, &node_events,
                       node);
}

void Connection::on_node_info(void *data, const struct pw_node_info *info) {
  auto *node = static_cast<Node *>(data);
  Connection *self = node->conn;
  if (node->have_info) {
    return;
  }
  if (info->props != nullptr) {
    const uint32_t app_pid = parse_u32(spa_dict_lookup(info->props, PW_KEY_APP_PROCESS_ID));
    if (app_pid != 0) {
      node->app_pid = app_pid;
    }
    const uint32_t client_id = parse_u32(spa_dict_lookup(info->props, PW_KEY_CLIENT_ID));
    if (client_id != 0) {
      node->client_id = client_id;
    }
  }
  node->have_info = true;
  self->resolve(*node);
}

void Connection::destroy_node(Node *node) {
  if (node->proxy != nullptr) {
    spa_hook_remove(&node->listener);
    pw_proxy_destroy(node->proxy);
    node->proxy = nullptr;
  }
  delete node;
}

// The backends forget it first: it goes with its links.
void Connection::remove_node(Node *node) {
  for (Backend *b : backends) {
    b->on_node_removed(*node);
  }
  destroy_node(node);
}

// Whose stream is it? Pid: the node's application.process.id (pipewire-pulse streams carry
// the real client's), else its Client's pipewire.sec.pid (kernel-given), else the Client's
// application.process.id. Left unresolved while its Client global has not been seen (it
// comes first, normally); once resolved, every backend decides whether it captures it.
void Connection::resolve(Node &node) {
  uint32_t pid = node.app_pid;
  if (pid == 0 && node.client_id != 0) {
    auto client = clients.find(node.client_id);
    if (client == clients.end()) {
      return;
    }
    pid = client->second.sec_pid != 0 ? client->second.sec_pid : client->second.app_pid;
  }
  node.pid = pid;
  node.resolved = true;
  for (Backend *b : backends) {
    b->decide(node);
  }
}

void Connection::resolve_pending() {
  for (auto &entry : nodes) {
    Node &node = *entry.second;
    if (node.have_info && !node.resolved) {
      resolve(node);
    }
  }
}

void Connection::on_idle_tick(void *data, uint64_t expirations) {
  auto *self = static_cast<Connection *>(data);
  const uint64_t now = monotonic_now_ns();
  for (Backend *b : self->armed) {
    b->idle_check(now);
  }
}

// ------------------------------------------------------------------------------------------
// Connection: life cycle

CaptureError Connection::acquire(const Logger &log, std::shared_ptr<Connection> *out, bool *fresh) {
  ensure_pw_init();
  const std::string key = describe_socket();
  std::lock_guard<std::mutex> lock(connections_mutex());
  auto &table = connections();
  for (auto it = table.begin(); it != table.end();) {
    it = it->second.expired() ? table.erase(it) : std::next(it);
  }
  std::shared_ptr<Connection> conn = table[key].lock();
  if (conn != nullptr && !conn->lost.load()) {
    PA_DEBUG(log, "sharing the PipeWire connection to %s", key.c_str());
    *out = std::move(conn);
    *fresh = false;
    return {};
  }
  // None yet, or the one there is was lost (the daemon died): a new one. The lost one stays
  // with the backends still holding it until they close.
  conn = std::make_shared<Connection>();
  conn->key = key;
  if (CaptureError error = conn->connect(log)) {
    return error;  // `conn` tears down what was made
  }
  table[key] = conn;
  *out = std::move(conn);
  *fresh = true;
  return {};
}

CaptureError Connection::connect(const Logger &log) {
  loop = pw_thread_loop_new("procaudio-pw", nullptr);
  if (loop == nullptr) {
    const int err = errno;
    return {ErrorKind::kFailed, "Cannot create a PipeWire thread loop.",
            "pw_thread_loop_new: " + proc::errno_text(err)};
  }
  context = pw_context_new(pw_thread_loop_get_loop(loop), nullptr, 0);
  if (context == nullptr) {
    const int err = errno;
    return {ErrorKind::kBackendUnavailable,
            "Cannot set up a PipeWire client (is libpipewire-0.3 installed completely?).",
            "pw_context_new: " + proc::errno_text(err)};
  }
  data_loop = pw_data_loop_get_loop(pw_context_get_data_loop(context));
  if (pw_thread_loop_start(loop) < 0) {
    const int err = errno;
    return {ErrorKind::kFailed, "Cannot start the PipeWire thread loop.",
            "pw_thread_loop_start: " + proc::errno_text(err)};
  }
  lock();
  pw_properties *props = pw_properties_new(PW_KEY_APP_NAME, "procaudio", nullptr);
  core = pw_context_connect(context, props, 0);
  if (core == nullptr) {
    const int err = errno;
    unlock();
    const std::string xdg = env_or("XDG_RUNTIME_DIR", "");
    const std::string where =
        socket_path().empty()
            ? "XDG_RUNTIME_DIR is not set (nor PIPEWIRE_RUNTIME_DIR), so there is no " +
                  env_or("PIPEWIRE_REMOTE", "pipewire-0") + " socket to connect to"
            : "no server answers on " + socket_path() +
                  " (XDG_RUNTIME_DIR=" + (xdg.empty() ? std::string("<unset>") : xdg) + ")";
    return {ErrorKind::kBackendUnavailable,
            "Cannot connect to PipeWire: " + where +
                ". Start PipeWire and WirePlumber (e.g. `systemctl --user start pipewire "
                "wireplumber`), or point XDG_RUNTIME_DIR / PIPEWIRE_RUNTIME_DIR / "
                "PIPEWIRE_REMOTE at a running session.",
            "pw_context_connect(" + describe_socket() + "): " + proc::errno_text(err)};
  }
  static const pw_core_events core_events = [] {
    pw_core_events events{};
    events.version = PW_VERSION_CORE_EVENTS;
    events.done = &Connection::on_core_done;
    events.error = &Connection::on_core_error;
    return events;
  }();
  pw_core_add_listener(core, &core_listener, &core_events, this);
  registry = pw_core_get_registry(core, PW_VERSION_REGISTRY, 0);
  static const pw_registry_events registry_events = [] {
    pw_registry_events events{};
    events.version = PW_VERSION_REGISTRY_EVENTS;
    events.global = &Connection::on_global;
    events.global_remove = &Connection::on_global_remove;
    return events;
  }();
  pw_registry_add_listener(registry, &registry_listener, &registry_events, this);
  const CaptureError error = sync_all();
  unlock();
  if (error) {
    return error;
  }
  PA_DEBUG(log, "new PipeWire connection to %s", key.c_str());
  return {};
}

CaptureError Connection::attach(Backend *backend, bool fresh) {
  lock();
  backends.push_back(backend);
  // A shared connection: sync, as a new one did, so that every stream the server has now is
  // known before this backend starts.
  const CaptureError error = fresh ? CaptureError{} : sync_all();
  if (!error) {
    // Every global is known now: a stream whose Client is not visible gets decided anyway.
    for (auto &entry : nodes) {
      if (entry.second->have_info) {
        backend->decide(*entry.second, true);
      }
    }
  }
  unlock();
  if (error) {
    detach(backend);
  }
  return error;
}

void Connection::detach(Backend *backend) {
  lock();
  backends.erase(std::remove(backends.begin(), backends.end(), backend), backends.end());
  backend->decided.clear();
  // Anything the thread loop queued on the data loop for this backend (an error) runs
  // before this barrier does.
  pw_loop_invoke(data_loop, &Connection::do_barrier, 0, nullptr, 0, true, nullptr);
  unlock();
}

void Connection::teardown() {
  if (loop != nullptr) {
    lock();
    if (idle_timer != nullptr) {  // every backend disarmed before it detached: not normally
      pw_loop_invoke(data_loop, &Connection::do_destroy_idle_timer, 0, nullptr, 0, true, this);
    }
    for (auto &entry : nodes) {
      destroy_node(entry.second);
    }
    nodes.clear();
    ports.clear();
    clients.clear();
    if (registry != nullptr) {
      spa_hook_remove(&registry_listener);
      pw_proxy_destroy(reinterpret_cast<pw_proxy *>(registry));
      registry = nullptr;
    }
    if (core != nullptr) {
      spa_hook_remove(&core_listener);
      pw_core_disconnect(core);
      core = nullptr;
    }
    unlock();
    pw_thread_loop_stop(loop);
  }
  if (context != nullptr) {
    pw_context_destroy(context);
    context = nullptr;
    data_loop = nullptr;
  }
  if (loop != nullptr) {
    pw_thread_loop_destroy(loop);
    loop = nullptr;
  }
}

// ------------------------------------------------------------------------------------------

PipeWireBackend::PipeWireBackend(Logger logger) : impl_(new Impl(std::move(logger))) {}

PipeWireBackend::~PipeWireBackend() {
  close();
}

FormatCaps PipeWireBackend::formats() const {
  return supported_formats();
}

FormatCaps PipeWireBackend::supported_formats() {
  FormatCaps caps;
  caps.sample_formats = {SampleFormat::kF32LE, SampleFormat::kS16LE};
  caps.rate_min = 8000;
  caps.rate_max = 192000;
  caps.channels_min = 1;
  caps.channels_max = 2;
  return caps;
}

CaptureError PipeWireBackend::open(const TargetSpec &target) {
  close();
  Impl &s = *impl_;
  if (CaptureError error = target.validate()) {
    return error;
  }
  s.target = target;
  s.has_target = target.has_target();
  s.self_pid = static_cast<uint32_t>(getpid());
  s.root_pid = 0;
  if (target.pid != 0) {
    if (CaptureError error = proc::check_pid(target.pid)) {
      return error;
    }
    s.root_pid = target.pid;
  } else if (!target.process_name.empty()) {
    if (CaptureError error = proc::resolve_process_name(target.process_name, &s.root_pid)) {
      return error;
    }
    PA_INFO(s.log, "process '%s' is pid %u", target.process_name.c_str(), s.root_pid);
  }
  if (s.root_pid != 0) {
    const uint64_t start = proc::start_time(s.root_pid);
    if (CaptureError error = s.exit_watch.open(s.root_pid, start)) {
      if (error.kind == ErrorKind::kNotFound) {
        return error;
      }
      // No pidfd (Linux < 5.3): capture still works, only the exit is not noticed.
      PA_WARNING(s.log, "%s (%s): the target's exit will not end the capture",
                 error.message.c_str(), error.detail.c_str());
    }
  }
  // The shared connection; a shared one found dead while syncing (the daemon died and the
  // loss is not seen yet) is replaced once by a new one.
  CaptureError error;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<Connection> conn;
    bool fresh = false;
    error = Connection::acquire(s.log, &conn, &fresh);
    if (error) {
      break;
    }
    s.conn = conn;  // attach() may raise errors for this backend on it
    error = conn->attach(&s, fresh);
    if (!error) {
      break;
    }
    s.conn.reset();
    if (fresh || !conn->lost.load()) {
      break;
    }
  }
  if (error) {
    PA_ERROR(s.log, "%s (%s)", error.message.c_str(), error.detail.c_str());
    s.exit_watch.close();
    return error;
  }
  PA_INFO(s.log, "connected to PipeWire on %s; target: %s (pid %u)", s.conn->key.c_str(),
          target.describe().c_str(), s.root_pid);
  return {};
}

CaptureError PipeWireBackend::start(const CaptureConfig &config, CaptureSink &sink) {
  Impl &s = *impl_;
  if (s.conn == nullptr) {
    return {ErrorKind::kFailed, "The PipeWire backend was started before it was opened.",
            "PipeWireBackend::start without open"};
  }
  stop();
  if (!formats().accepts(config.format)) {
    return {ErrorKind::kFormatRefused,
            "PipeWire capture supports F32LE or S16LE, 8000-192000 Hz, 1 or 2 channels.",
            "requested rate " + std::to_string(config.format.rate) + ", " +
                std::to_string(config.format.channels) + " channels"};
  }
  Connection &c = *s.conn;
  s.config = config;
  s.out_channels = config.format.channels;
  s.scratch.assign(s.out_channels == 1 ? kScratchFrames * 4 : 0, 0);
  {
    std::lock_guard<std::mutex> lock(s.error_mutex);
    s.pending_error = {};
  }
  {
    std::lock_guard<std::mutex> lock(s.stats_mutex);
    s.stats = {};
  }
  s.quantum_ns = kDefaultQuantumNs;

  c.lock();
  if (c.lost.load()) {
    c.unlock();
    return {ErrorKind::kDeviceLost, "The connection to PipeWire was lost before capture started.",
            c.lost_error};
  }
  const std::string who = s.target.describe();
  pw_properties *props =
      pw_properties_new(PW_KEY_MEDIA_TYPE, "Audio", PW_KEY_MEDIA_CATEGORY, "Capture",
                        PW_KEY_NODE_NAME, "procaudio-capture", PW_KEY_APP_NAME, "procaudio",
                        // Never linked by the session manager: no default-source fallback, not now,
                        // not when the target goes away, not after a restore.
                        PW_KEY_NODE_AUTOCONNECT, "false", "node.dont-reconnect", "true",
                        "state.restore-target", "false", "state.restore-props", "false",
                        // Keep running (and delivering silence) while no target is linked.
                        PW_KEY_NODE_ALWAYS_PROCESS, "true", PW_KEY_NODE_WANT_DRIVER, "true",
                        // Marks this node as a procaudio capture for anyone listing streams.
                        "procaudio.capture", "true", nullptr);
  pw_properties_setf(props, PW_KEY_NODE_DESCRIPTION, "procaudio capture: %s", who.c_str());
  if (s.root_pid != 0) {
    pw_properties_setf(props, "procaudio.target.pid", "%u", s.root_pid);
  }
  s.stream = pw_stream_new(c.core, "procaudio-capture", props);
  if (s.stream == nullptr) {
    const int err = errno;
    c.unlock();
    return {ErrorKind::kFailed, "Cannot create a PipeWire capture stream.",
            "pw_stream_new: " + proc::errno_text(err)};
  }
  static const pw_stream_events stream_events = [] {
    pw_stream_events events{};
    events.version = PW_VERSION_STREAM_EVENTS;
    events.state_changed = &Impl::on_stream_state;
    events.param_changed = &Impl::on_stream_param_changed;
    events.process = &Impl::on_process;
    return events;
  }();
  pw_stream_add_listener(s.stream, &s.stream_listener, &stream_events, &s);

  uint8_t pod_buffer[1024];
  struct spa_pod_builder builder;
  spa_pod_builder_init(&builder, pod_buffer, sizeof pod_buffer);
  struct spa_audio_info_raw info;
  std::memset(&info, 0, sizeof info);
  info.format = config.format.sample_format == SampleFormat::kF32LE ? SPA_AUDIO_FORMAT_F32_LE
                                                                    : SPA_AUDIO_FORMAT_S16_LE;
  info.rate = config.format.rate;
  info.channels = 2;  // FL + FR ports; a mono capture is downmixed here (see downmix())
  info.position[0] = SPA_AUDIO_CHANNEL_FL;
  info.position[1] = SPA_AUDIO_CHANNEL_FR;
  const struct spa_pod *params[1] = {
      spa_format_audio_raw_build(&builder, SPA_PARAM_EnumFormat, &info)};

  s.stream_state = PW_STREAM_STATE_UNCONNECTED;
  s.stream_error.clear();
  s.format_ok = false;
  s.format_refused = false;
  s.own_node_id = SPA_ID_INVALID;
  s.own_node_id_public = SPA_ID_INVALID;
  for (const auto &entry : s.decided) {
    s.count_stream(entry.second);  // streams already there; later ones count in decide()
  }
  // Arm the data loop before the stream can run: the first cycle already delivers. (Every
  // invoke onto the shared data loop is made with the thread loop locked.)
  Impl::Arm arm{&s, &sink, s.root_pid != 0};
  pw_loop_invoke(c.data_loop, &Impl::do_arm, 0, &arm, sizeof arm, true, nullptr);
  s.capturing = true;

  const int res = pw_stream_connect(
      s.stream, PW_DIRECTION_INPUT, PW_ID_ANY,
      static_cast<pw_stream_flags>(PW_STREAM_FLAG_MAP_BUFFERS | PW_STREAM_FLAG_RT_PROCESS |
                                   PW_STREAM_FLAG_DONT_RECONNECT),
      params, 1);
  CaptureError error;
  if (res < 0) {
    error = {ErrorKind::kFailed, "Cannot connect the PipeWire capture stream.",
             "pw_stream_connect: " + std::string(spa_strerror(res))};
  } else {
    // Ready when the server made our node and the session manager configured its ports.
    const bool ready = c.wait_until(
        [&s, &c] {
          return c.lost.load() || s.stream_state == PW_STREAM_STATE_ERROR || s.format_refused ||
                 (s.own_node_id != SPA_ID_INVALID && s.format_ok &&
                  (s.stream_state == PW_STREAM_STATE_PAUSED ||
                   s.stream_state == PW_STREAM_STATE_STREAMING));
        },
        kServerTimeoutMs);
    if (c.lost.load()) {
      error = {ErrorKind::kDeviceLost, "The connection to PipeWire was lost while starting.",
               c.lost_error};
    } else if (s.stream_state == PW_STREAM_STATE_ERROR) {
      error = {ErrorKind::kFailed, "PipeWire refused the capture stream: " + s.stream_error,
               "pw_stream state error: " + s.stream_error};
    } else if (s.format_refused) {
      error = {ErrorKind::kFormatRefused,
               "PipeWire would not capture in the requested format (" +
                   std::to_string(config.format.rate) + " Hz).",
               "negotiated format differs from the EnumFormat offered"};
    } else if (!ready) {
      error = {ErrorKind::kTimeout,
               "PipeWire did not set up the capture stream within 5 s: is a session manager "
               "(WirePlumber) running? Without one, streams get no ports.",
               std::string("pw_stream state ") + pw_stream_state_as_string(s.stream_state) +
                   (s.format_ok ? "" : ", no format") +
                   (s.own_node_id == SPA_ID_INVALID ? ", no node id" : "")};
    }
  }
  if (!error) {
    s.update_links();
    PA_INFO(s.log, "capturing %s as node %u: %s %u Hz, %u channel(s)", who.c_str(), s.own_node_id,
            sample_format_name(config.format.sample_format), config.format.rate,
            config.format.channels);
  }
  c.unlock();
  if (error) {
    PA_ERROR(s.log, "%s (%s)", error.message.c_str(), error.detail.c_str());
    stop();
  }
  return error;
}

void PipeWireBackend::stop() {
  Impl &s = *impl_;
  if (s.conn == nullptr) {
    return;
  }
  Connection &c = *s.conn;
  c.lock();
  const bool was_capturing = s.capturing || s.stream != nullptr;
  s.capturing = false;
  s.destroy_all_links();
  if (s.stream != nullptr) {
    // Disconnect first: it takes the node off the data loop (a blocking invoke there), so the
    // process callback is not running when the listener goes. `capturing` is false, so the
    // state change to UNCONNECTED is not reported as an error.
    pw_stream_disconnect(s.stream);
    spa_hook_remove(&s.stream_listener);
    pw_stream_destroy(s.stream);
    s.stream = nullptr;
  }
  s.own_node_id = SPA_ID_INVALID;
  s.own_node_id_public = SPA_ID_INVALID;
  if (was_capturing) {
    // A barrier on the data loop: once it has run, no sink call is in flight or will follow.
    // Under the thread loop lock, as every invoke onto the shared data loop.
    pw_loop_invoke(c.data_loop, &Impl::do_disarm, 0, nullptr, 0, true, &s);
  }
  c.unlock();
}

void PipeWireBackend::close() {
  Impl &s = *impl_;
  stop();
  if (s.conn != nullptr) {
    s.conn->detach(&s);
    s.conn.reset();  // the last backend on a connection tears it down, here
  }
  s.exit_watch.close();
  s.root_pid = 0;
  s.has_target = false;
}

uint64_t PipeWireBackend::latency_ns() const {
  return impl_->quantum_ns.load();
}

uint64_t PipeWireBackend::idle_margin_ns() const {
  return impl_->idle_margin();
}

uint32_t PipeWireBackend::resolved_pid() const {
  return impl_->root_pid;
}

PipeWireBackend::LinkStats PipeWireBackend::link_stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mutex);
  return impl_->stats;
}

uint32_t PipeWireBackend::node_id() const {
  return impl_->own_node_id_public.load();
}

}  // namespace procaudio
