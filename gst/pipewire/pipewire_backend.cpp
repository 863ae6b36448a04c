// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pipewire_backend.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "process_util.h"
#include "pw_capture_stream.h"
#include "pw_connection.h"
#include "pw_registry.h"
#include "pw_target_links.h"

namespace procaudio {
namespace pipewire {

// ------------------------------------------------------------------------------------------
// One backend: its target, and what it wires together on the shared connection (see
// pw_connection.h for the threads and locks): the registry's events drive its decisions and
// links (and, when following, which process is the target), its capture stream's node is
// where they link to, the target's exit is watched on the thread loop, and a lost connection
// is an error for the stream's sink.

// How long the target's audio is read after its exit: what it played last is in the graph
// for a cycle (21 ms at the default quantum) or two.
constexpr uint64_t kExitDrainNs = 50'000'000;

struct PipeWireBackend::Impl final : RegistryListener,
                                     CaptureStream::Events,
                                     TargetLinks::Events {
  explicit Impl(Logger l) : log(std::move(l)), links(log, *this), stream(log, *this) {}

  Logger log;

  // ---- set by open(), read-only afterwards
  TargetSpec target;
  std::shared_ptr<Connection> conn;  // open() to close(), caller thread

  // ---- the target's process: the caller's in open() and close(), else the thread loop's
  std::atomic<uint32_t> root_pid{0};  // whose tree is captured (0: none, or waiting)
  TargetState::Phase phase = TargetState::Phase::kWaiting;
  uint32_t exited_pid = 0;            // phase kExited: who
  ExitWatch exit_watch;         // root_pid's pidfd
  spa_source *exit_source = nullptr;  // on the thread loop, while the exit is watched
  spa_source *drain_timer = nullptr;  // on the thread loop, from the exit to its report

  TargetLinks links;
  CaptureStream stream;

  // Caller thread, while not attached: the connection the parts work on (null: none).
  void use(std::shared_ptr<Connection> c) {
    links.set_connection(c.get());
    stream.set_connection(c.get());
    conn = std::move(c);
  }

  TargetState state_now() const {
    switch (phase) {
      case TargetState::Phase::kCapturing:
        return {phase, root_pid.load(), links.captured_streams()};
      case TargetState::Phase::kExited:
        return {phase, exited_pid, 0};
      case TargetState::Phase::kWaiting:
        break;
    }
    return {TargetState::Phase::kWaiting, 0, 0};
  }

  // ---- the target's process
  // Caller or thread loop: holds `root`'s pidfd, checked against the start time it had when
  // it was found (an error if it is gone already).
  CaptureError hold_exit(uint32_t root, uint64_t start_time) {
    if (CaptureError error = exit_watch.open(root, start_time)) {
      if (error.kind == ErrorKind::kNotFound) {
        return error;
      }
      // No pidfd (Linux < 5.3): capture still works, only the exit is not noticed.
      PROCAUDIO_WARNING(log, "%s (%s): the target's exit will not be noticed",
                        error.message.c_str(), error.detail.c_str());
    }
    return {};
  }

  // Thread loop locked: the pidfd held wakes the thread loop when the process exits.
  void watch_exit() {
    if (exit_watch.fd() >= 0 && exit_source == nullptr) {
      exit_source =
          pw_loop_add_io(conn->loop(), exit_watch.fd(), SPA_IO_IN | SPA_IO_HUP | SPA_IO_ERR, false,
                         &Impl::on_exit_fd, this);
    }
  }

  // Thread loop locked.
  void unwatch_exit() {
    if (exit_source != nullptr) {
      pw_loop_destroy_source(conn->loop(), exit_source);
      exit_source = nullptr;
    }
    if (drain_timer != nullptr) {
      pw_loop_destroy_source(conn->loop(), drain_timer);
      drain_timer = nullptr;
    }
    exit_watch.close();
  }

  // Following: the stream node of `node` may be the application's, playing again.
  void try_attach(const StreamNode &node) {
    if (phase != TargetState::Phase::kWaiting || !target.follows() || !node.resolved ||
        node.pid == 0) {
      return;
    }
    const uint32_t root = ancestor_named(node.pid, target.process_name);
    if (root == 0 || hold_exit(root, start_time(root))) {
      return;  // not the application, or gone again already: keep waiting
    }
    watch_exit();
    PROCAUDIO_INFO(log, "process '%s' plays as pid %u (stream node %u): capturing its tree",
                   target.process_name.c_str(), root, node.id);
    root_pid = root;
    // Phase still kWaiting: no state per stream meanwhile. Its links come up now; the stream
    // delivers nothing of them until the data loop has the state posted next.
    links.set_root(root);
    phase = TargetState::Phase::kCapturing;
    stream.post_state(state_now());
  }

  // The target exited: what it played last is still in the graph for a cycle or so.
  static void on_exit_fd(void *data, int, uint32_t) {
    auto *self = static_cast<Impl *>(data);
    if (self->exit_source != nullptr) {
      pw_loop_destroy_source(self->conn->loop(), self->exit_source);
      self->exit_source = nullptr;
    }
    PROCAUDIO_DEBUG(self->log, "target pid %u exited: reading what is still in flight for %llu ms",
                    self->root_pid.load(),
                    static_cast<unsigned long long>(kExitDrainNs / 1'000'000));
    self->drain_timer = pw_loop_add_timer(self->conn->loop(), &Impl::on_drained, self);
    struct timespec value = {0, static_cast<long>(kExitDrainNs)};
    pw_loop_update_timer(self->conn->loop(), self->drain_timer, &value, nullptr, false);
  }

  static void on_drained(void *data, uint64_t) {
    auto *self = static_cast<Impl *>(data);
    const uint32_t pid = self->root_pid;
    self->unwatch_exit();
    self->exited_pid = pid;
    self->stream.post_state({TargetState::Phase::kExited, pid, 0});
    if (!self->target.follows()) {
      PROCAUDIO_INFO(self->log, "target pid %u exited: end of capture", pid);
      self->phase = TargetState::Phase::kExited;
      self->stream.post_target_exit();
      return;
    }
    PROCAUDIO_INFO(self->log, "target pid %u exited: waiting for the next process named '%s'", pid,
                   self->target.process_name.c_str());
    self->phase = TargetState::Phase::kWaiting;
    self->root_pid = 0;
    self->links.set_root(0);  // its links go (its nodes are going too)
    self->stream.post_state(self->state_now());
    // Another process of the name may be playing already.
    self->conn->registry().for_each_stream_node(
        [self](const StreamNode &node) { self->try_attach(node); });
  }

  // ---- events (thread loop locked)
  void on_attached(const Registry &registry) override {
    // Every global is known and resolved now.
    registry.for_each_stream_node([this](const StreamNode &node) {
      links.decide(node);
      try_attach(node);
    });
  }
  void on_stream_node(const StreamNode &node) override {
    links.decide(node);
    try_attach(node);
  }
  void on_stream_node_removed(const StreamNode &node) override {
    links.on_stream_node_removed(node);
  }
  void on_port_added(uint32_t id, const Port &port) override { links.on_port_added(port); }
  void on_port_removed(uint32_t id) override { links.on_port_removed(id); }
  void on_connection_lost(const CaptureError &error) override { stream.raise_error(error); }
  void on_node_id(uint32_t id) override { links.on_own_node(id); }
  void on_captured_streams(uint32_t streams) override {
    if (phase == TargetState::Phase::kCapturing) {
      stream.post_state({TargetState::Phase::kCapturing, root_pid.load(), streams});
    }
  }
};

PipeWireBackend::PipeWireBackend(Logger logger) : impl_(new Impl(std::move(logger))) {}

PipeWireBackend::~PipeWireBackend() {
  close();
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
  uint32_t root = 0;
  if (target.pid != 0) {
    if (CaptureError error = check_pid(target.pid)) {
      return error;
    }
    root = target.pid;
  } else if (!target.process_name.empty()) {
    const CaptureError error = resolve_process_name(target.process_name, root);
    if (error && !(error.kind == ErrorKind::kNotFound && target.follows())) {
      return error;
    }
    if (!error) {
      PROCAUDIO_INFO(s.log, "process '%s' is pid %u", target.process_name.c_str(), root);
    }
  }
  // Held at once: a pid reused from here on cannot be mistaken for the target.
  if (root != 0) {
    if (CaptureError error = s.hold_exit(root, start_time(root))) {
      if (!target.follows()) {
        return error;
      }
      root = 0;  // it exited just now: wait for the next one
    }
  }
  if (root == 0 && target.follows()) {
    PROCAUDIO_INFO(s.log, "process '%s' is not running: waiting for it",
                   target.process_name.c_str());
  }
  CaptureRule rule;
  rule.mode = target.mode;
  rule.root_pid = root;
  rule.self_pid = static_cast<uint32_t>(getpid());
  s.links.set_rule(rule);
  s.root_pid = root;
  s.phase = root != 0 || !target.has_target() ? TargetState::Phase::kCapturing
                                              : TargetState::Phase::kWaiting;
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
  if (!error) {
    s.conn->lock();
    // The daemon names processes by the pids of its own pid namespace; this /proc, by those of
    // ours. Where they differ (a container or sandbox of our own), none of the daemon's pids
    // means anything here: our own client, seen by the daemon under another pid, tells.
    const auto self_pid = static_cast<uint32_t>(getpid());
    if (s.conn->registry().has_clients() && !s.conn->registry().has_client_with_pid(self_pid)) {
      error = {ErrorKind::kBackendUnavailable,
               "This process runs in another pid namespace than the PipeWire daemon (a container "
               "or a sandbox with its own processes): the daemon's process ids do not name its "
               "processes here, so no application can be told apart. Run the capture where the "
               "PipeWire daemon runs.",
               "no PipeWire Client has pipewire.sec.pid " + std::to_string(self_pid) +
                   " (this process's pid here)"};
    } else {
      s.watch_exit();
    }
    s.conn->unlock();
  }
  if (error) {
    close();
    return error;
  }
  PROCAUDIO_INFO(s.log, "connected to PipeWire on %s; target: %s (pid %u)", s.conn->key().c_str(),
                 target.describe().c_str(), root);
  return {};
}

CaptureError PipeWireBackend::start(const CaptureConfig &config, CaptureSink &sink) {
  Impl &s = *impl_;
  if (s.conn == nullptr) {
    return {ErrorKind::kFailed, "The PipeWire backend was started before it was opened.",
            "PipeWireBackend::start without open"};
  }
  stop();
  if (!supported_formats().accepts(config.format)) {
    return {ErrorKind::kFormatRefused,
            "PipeWire capture supports F32LE or S16LE, 8000-192000 Hz, 1 or 2 channels.",
            "requested rate " + std::to_string(config.format.rate) + ", " +
                std::to_string(config.format.channels) + " channels"};
  }
  Connection &c = *s.conn;
  s.stream.prepare(config);
  s.stream.feed(&s.links.live_links());
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
  // Arm the data loop before the stream can run: the first cycle already delivers. The sink
  // hears where the target stands first (and its end, if it exited before this start).
  s.stream.arm(sink);
  s.stream.post_state(s.state_now());
  if (s.phase == TargetState::Phase::kExited) {
    s.stream.post_target_exit();
  }
  const CaptureError error = s.stream.connect();
  if (!error) {
    s.links.update_links();
    PROCAUDIO_INFO(s.log, "capturing %s as node %u: %s %u Hz, %u channel(s)", who.c_str(),
                   s.stream.node_id(), sample_format_name(config.format.sample_format),
                   config.format.rate, config.format.channels);
  }
  c.unlock();
  if (error) {
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
    s.conn->lock();
    s.unwatch_exit();
    s.conn->unlock();
    s.conn->detach(&s);
    s.use(nullptr);  // the last backend on a connection tears it down, here
  }
  s.exit_watch.close();
  s.root_pid = 0;
  s.phase = TargetState::Phase::kWaiting;
  s.exited_pid = 0;
  s.links.set_rule({});
}

uint64_t PipeWireBackend::latency_ns() const {
  return impl_->stream.quantum_ns();
}

uint64_t PipeWireBackend::idle_margin_ns() const {
  return CaptureStream::kIdleMarginNs;
}

uint32_t PipeWireBackend::resolved_pid() const {
  return impl_->root_pid;
}

PipeWireBackend::LinkStats PipeWireBackend::link_stats() const {
  return impl_->links.stats();
}

}  // namespace pipewire
}  // namespace procaudio
