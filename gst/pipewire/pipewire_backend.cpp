#include "pipewire_backend.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "proc_tree.h"
#include "pw_capture_stream.h"
#include "pw_connection.h"
#include "pw_registry.h"
#include "pw_target_links.h"

namespace procaudio {

using pipewire::CaptureRule;
using pipewire::CaptureStream;
using pipewire::Connection;
using pipewire::Port;
using pipewire::Registry;
using pipewire::StreamNode;
using pipewire::TargetLinks;

// ------------------------------------------------------------------------------------------
// One backend: its target, and what it wires together on the shared connection (see
// pw_connection.h for the threads and locks): the registry's events drive its decisions and
// links, its capture stream's node is where they link to, and a lost connection is an error
// for the stream's sink.

struct PipeWireBackend::Impl final : pipewire::RegistryListener, CaptureStream::Events {
  explicit Impl(Logger l) : log(std::move(l)), links(log), stream(log, *this) {}

  Logger log;

  // ---- set by open(), read-only afterwards
  TargetSpec target;
  uint32_t root_pid = 0;
  proc::ExitWatch exit_watch;
  std::shared_ptr<Connection> conn;  // open() to close(), caller thread

  TargetLinks links;
  CaptureStream stream;

  // Caller thread, while not attached: the connection the parts work on (null: none).
  void use(std::shared_ptr<Connection> c) {
    links.set_connection(c.get());
    stream.set_connection(c.get());
    conn = std::move(c);
  }

  // ---- events (thread loop locked)
  void on_attached(const Registry &registry) override {
    // Every global is known now: a stream whose Client is not visible gets decided anyway.
    registry.for_each_stream_node([this](const StreamNode &node) { links.decide(node, true); });
  }
  void on_stream_node(const StreamNode &node) override { links.decide(node); }
  void on_stream_node_removed(const StreamNode &node) override {
    links.on_stream_node_removed(node);
  }
  void on_port_added(uint32_t id, const Port &port) override { links.on_port_added(port); }
  void on_port_removed(uint32_t id) override { links.on_port_removed(id); }
  void on_connection_lost(const CaptureError &error) override { stream.raise_error(error); }
  void on_node_id(uint32_t id) override { links.on_own_node(id); }
};

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
  CaptureRule rule;
  rule.has_target = target.has_target();
  rule.mode = target.mode;
  rule.root_pid = s.root_pid;
  rule.self_pid = static_cast<uint32_t>(getpid());
  s.links.set_rule(rule);
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
    s.use(conn);  // attach() may raise errors for this backend on it
    error = conn->attach(&s, s.log, fresh);
    if (!error) {
      break;
    }
    s.use(nullptr);  // and forget what was decided while it synced
    if (fresh || !conn->lost()) {
      break;
    }
  }
  if (error) {
    PA_ERROR(s.log, "%s (%s)", error.message.c_str(), error.detail.c_str());
    s.exit_watch.close();
    return error;
  }
  PA_INFO(s.log, "connected to PipeWire on %s; target: %s (pid %u)", s.conn->key().c_str(),
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
  s.stream.prepare(config);
  s.links.reset_stats();

  c.lock();
  if (c.lost()) {
    c.unlock();
    return {ErrorKind::kDeviceLost, "The connection to PipeWire was lost before capture started.",
            c.lost_error()};
  }
  const std::string who = s.target.describe();
  if (CaptureError error = s.stream.create(who, s.root_pid)) {
    c.unlock();
    return error;
  }
  s.links.start();
  // Arm the data loop before the stream can run: the first cycle already delivers.
  s.stream.arm(sink, s.root_pid != 0 ? s.exit_watch.fd() : -1);
  const CaptureError error = s.stream.connect();
  if (!error) {
    s.links.update_links();
    PA_INFO(s.log, "capturing %s as node %u: %s %u Hz, %u channel(s)", who.c_str(),
            s.stream.node_id(), sample_format_name(config.format.sample_format), config.format.rate,
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
  s.links.stop();   // no more links wanted; ours go first
  s.stream.stop();  // then the stream, and the sink is done with
  c.unlock();
}

void PipeWireBackend::close() {
  Impl &s = *impl_;
  stop();
  if (s.conn != nullptr) {
    s.conn->detach(&s);
    s.use(nullptr);  // the last backend on a connection tears it down, here
  }
  s.exit_watch.close();
  s.root_pid = 0;
  s.links.set_rule({});
}

uint64_t PipeWireBackend::latency_ns() const {
  return impl_->stream.quantum_ns();
}

uint64_t PipeWireBackend::idle_margin_ns() const {
  return impl_->stream.idle_margin();
}

uint32_t PipeWireBackend::resolved_pid() const {
  return impl_->root_pid;
}

PipeWireBackend::LinkStats PipeWireBackend::link_stats() const {
  return impl_->links.stats();
}

uint32_t PipeWireBackend::node_id() const {
  return impl_->stream.public_node_id();
}

}  // namespace procaudio
