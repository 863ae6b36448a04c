// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pw_connection.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "core/monotonic_clock.h"
#include "process_util.h"

#include <spa/utils/result.h>

namespace procaudio {
namespace pipewire {

namespace {

std::once_flag g_pw_init_once;

void ensure_pw_init() {
  std::call_once(g_pw_init_once, [] { pw_init(nullptr, nullptr); });
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
// Server round trips (thread loop locked)

bool Connection::roundtrip(int timeout_ms) {
  const int seq = pw_core_sync(core_, PW_ID_CORE, 0);
  if (seq < 0) {
    return false;
  }
  pending_syncs_.insert(seq);
  wait_until([this, seq] { return pending_syncs_.count(seq) == 0 || lost_.load(); }, timeout_ms);
  const bool done = pending_syncs_.erase(seq) == 0;
  return done && !lost_.load();
}

CaptureError Connection::sync_all() {
  if (roundtrip(kServerTimeoutMs) && roundtrip(kServerTimeoutMs)) {
    return {};
  }
  const bool was_lost = lost_.load();
  return {was_lost ? ErrorKind::kBackendUnavailable : ErrorKind::kTimeout,
          "PipeWire on " + key_ + " did not answer" +
              (was_lost ? ": the connection failed." : " within 5 s."),
          was_lost ? lost_error_ : "pw_core_sync timed out"};
}

// ------------------------------------------------------------------------------------------
// Events

void Connection::on_core_done(void *data, uint32_t id, int seq) {
  auto *self = static_cast<Connection *>(data);
  if (id == PW_ID_CORE && self->pending_syncs_.erase(seq) != 0) {
    self->signal();
  }
}

void Connection::on_core_error(void *data, uint32_t id, int seq, int res, const char *message) {
  auto *self = static_cast<Connection *>(data);
  if (id != PW_ID_CORE) {
    // A proxy's error (a link the server refused, ...); its own listener handles it.
    for (const Attached &a : self->attached_) {
      PROCAUDIO_DEBUG(*a.log, "PipeWire error on object %u: %s (%s)", id, message ? message : "",
                      spa_strerror(res));
    }
    return;
  }
  // A broken socket loses the connection: libpipewire (0.3.65, protocol-native) reports any
  // failure to read or write it as "connection error", with the errno (EPIPE for a hang-up).
  // The server also reports a message about an object that just went away ("unknown
  // resource", ENOENT: a stream node removed while we spoke of it) on the core: a race, not a
  // loss.
  const bool lost = res == -EPIPE || res == -ECONNRESET || res == -ENOTCONN ||
                    (message != nullptr && std::strcmp(message, "connection error") == 0);
  const bool race = res == -ENOENT;
  for (const Attached &a : self->attached_) {
    if (lost) {
      PROCAUDIO_WARNING(*a.log, "PipeWire core error: %s (%s): connection lost",
                        message ? message : "", spa_strerror(res));
    } else if (race) {
      PROCAUDIO_DEBUG(*a.log, "PipeWire core error: %s (%s)", message ? message : "",
                      spa_strerror(res));
    } else {
      PROCAUDIO_WARNING(*a.log, "PipeWire core error: %s (%s)", message ? message : "",
                        spa_strerror(res));
    }
  }
  if (lost && !self->lost_.load()) {
    self->lost_error_ = std::string(message ? message : "") + ": " + errno_text(res);
    self->lost_ = true;  // the next open() makes a new connection
    const CaptureError error{ErrorKind::kDeviceLost,
                             "The connection to PipeWire was lost (the PipeWire daemon stopped "
                             "or restarted); capture ended.",
                             "PipeWire core error on " + self->key_ + ": " + self->lost_error_};
    for (const Attached &a : self->attached_) {
      a.listener->on_connection_lost(error);
    }
  }
  self->signal();
}

// ------------------------------------------------------------------------------------------
// The data loop: one idle tick for every armed capture

void Connection::arm_idle_tick(IdleClient *client, uint64_t deadline_ns) {
  auto it = std::find_if(armed_.begin(), armed_.end(),
                         [client](const Armed &a) { return a.client == client; });
  if (it == armed_.end()) {
    armed_.push_back({client, deadline_ns});
  } else {
    it->deadline_ns = deadline_ns;
  }
  if (idle_timer_ == nullptr) {
    idle_timer_ = pw_loop_add_timer(data_loop_, &Connection::on_idle_tick, this);
    timer_deadline_ns_ = UINT64_MAX;
  }
  update_idle_timer();
}

void Connection::disarm_idle_tick(IdleClient *client) {
  armed_.erase(std::remove_if(armed_.begin(), armed_.end(),
                              [client](const Armed &a) { return a.client == client; }),
               armed_.end());
  if (armed_.empty() && idle_timer_ != nullptr) {
    pw_loop_destroy_source(data_loop_, idle_timer_);
    idle_timer_ = nullptr;
  } else {
    update_idle_timer();
  }
}

// Sets the one timer for the earliest deadline (absolute, on CLOCK_MONOTONIC as the
// deadlines are), or disarms it.
void Connection::update_idle_timer() {
  if (idle_timer_ == nullptr) {
    return;
  }
  uint64_t earliest = UINT64_MAX;
  for (const Armed &a : armed_) {
    earliest = std::min(earliest, a.deadline_ns);
  }
  if (earliest == timer_deadline_ns_) {
    return;
  }
  timer_deadline_ns_ = earliest;
  struct timespec value = {0, 0};  // zero: disarmed
  if (earliest != UINT64_MAX) {
    const uint64_t at = std::max<uint64_t>(earliest, 1);
    value.tv_sec = static_cast<time_t>(at / 1'000'000'000);
    value.tv_nsec = static_cast<long>(at % 1'000'000'000);
  }
  pw_loop_update_timer(data_loop_, idle_timer_, &value, nullptr, true);
}

void Connection::on_idle_tick(void *data, uint64_t) {
  auto *self = static_cast<Connection *>(data);
  self->timer_deadline_ns_ = UINT64_MAX;  // fired: set again below
  const uint64_t now = monotonic_now_ns();
  // A client's tick re-arms it (arm_idle_tick() edits armed_): walk a copy.
  std::vector<IdleClient *> due;
  for (const Armed &a : self->armed_) {
    if (a.deadline_ns <= now) {
      due.push_back(a.client);
    }
  }
  for (IdleClient *client : due) {
    client->on_idle_tick(now);
  }
  self->update_idle_timer();
}

int Connection::do_destroy_idle_timer(struct spa_loop *, bool, uint32_t, const void *, size_t,
                                      void *user) {
  auto *self = static_cast<Connection *>(user);
  pw_loop_destroy_source(self->data_loop_, self->idle_timer_);
  self->idle_timer_ = nullptr;
  return 0;
}

// ------------------------------------------------------------------------------------------
// Life cycle

CaptureError Connection::acquire(const Logger &log, std::shared_ptr<Connection> *out, bool *fresh) {
  ensure_pw_init();
  const std::string key = describe_socket();
  std::lock_guard<std::mutex> lock(connections_mutex());
  auto &table = connections();
  for (auto it = table.begin(); it != table.end();) {
    it = it->second.expired() ? table.erase(it) : std::next(it);
  }
  std::shared_ptr<Connection> conn = table[key].lock();
  if (conn != nullptr && !conn->lost()) {
    PROCAUDIO_DEBUG(log, "sharing the PipeWire connection to %s", key.c_str());
    *out = std::move(conn);
    *fresh = false;
    return {};
  }
  // None yet, or the one there is was lost (the daemon died): a new one. The lost one stays
  // with the backends still holding it until they close.
  conn = std::make_shared<Connection>();
  conn->key_ = key;
  if (CaptureError error = conn->connect(log)) {
    return error;  // `conn` tears down what was made
  }
  table[key] = conn;
  *out = std::move(conn);
  *fresh = true;
  return {};
}

CaptureError Connection::connect(const Logger &log) {
  loop_ = pw_thread_loop_new("procaudio-pw", nullptr);
  if (loop_ == nullptr) {
    const int err = errno;
    return {ErrorKind::kFailed, "Cannot create a PipeWire thread loop.",
            "pw_thread_loop_new: " + errno_text(err)};
  }
  context_ = pw_context_new(pw_thread_loop_get_loop(loop_), nullptr, 0);
  if (context_ == nullptr) {
    const int err = errno;
    return {ErrorKind::kBackendUnavailable,
            "Cannot set up a PipeWire client (is libpipewire-0.3 installed completely?).",
            "pw_context_new: " + errno_text(err)};
  }
  data_loop_ = pw_data_loop_get_loop(pw_context_get_data_loop(context_));
  if (pw_thread_loop_start(loop_) < 0) {
    const int err = errno;
    return {ErrorKind::kFailed, "Cannot start the PipeWire thread loop.",
            "pw_thread_loop_start: " + errno_text(err)};
  }
  lock();
  pw_properties *props = pw_properties_new(PW_KEY_APP_NAME, "procaudio", nullptr);
  core_ = pw_context_connect(context_, props, 0);
  if (core_ == nullptr) {
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
            "pw_context_connect(" + describe_socket() + "): " + errno_text(err)};
  }
  static const pw_core_events core_events = [] {
    pw_core_events events{};
    events.version = PW_VERSION_CORE_EVENTS;
    events.done = &Connection::on_core_done;
    events.error = &Connection::on_core_error;
    return events;
  }();
  pw_core_add_listener(core_, &core_listener_, &core_events, this);
  registry_.watch(core_);
  const CaptureError error = sync_all();
  unlock();
  if (error) {
    return error;
  }
  PROCAUDIO_DEBUG(log, "new PipeWire connection to %s", key_.c_str());
  return {};
}

CaptureError Connection::attach(RegistryListener *listener, const Logger &log, bool fresh) {
  lock();
  attached_.push_back({listener, &log});
  registry_.add_listener(listener);
  // A shared connection: sync, as a new one did, so that every stream the server has now is
  // known before this backend starts.
  const CaptureError error = fresh ? CaptureError{} : sync_all();
  if (!error) {
    registry_.settle();  // every global is known: nothing waits for a Client any more
    listener->on_attached(registry_);
  }
  unlock();
  if (error) {
    detach(listener);
  }
  return error;
}

void Connection::detach(RegistryListener *listener) {
  lock();
  attached_.erase(std::remove_if(attached_.begin(), attached_.end(),
                                 [listener](const Attached &a) { return a.listener == listener; }),
                  attached_.end());
  registry_.remove_listener(listener);
  // Anything the thread loop queued on the data loop for this listener's backend (an error)
  // runs before this barrier does.
  invoke(&Connection::do_barrier, nullptr, 0, true, nullptr);
  unlock();
}

void Connection::teardown() {
  if (loop_ != nullptr) {
    lock();
    if (idle_timer_ != nullptr) {  // every backend disarmed before it detached: not normally
      invoke(&Connection::do_destroy_idle_timer, nullptr, 0, true, this);
    }
    registry_.clear();
    if (core_ != nullptr) {
      spa_hook_remove(&core_listener_);
      pw_core_disconnect(core_);
      core_ = nullptr;
    }
    unlock();
    pw_thread_loop_stop(loop_);
  }
  if (context_ != nullptr) {
    pw_context_destroy(context_);
    context_ = nullptr;
    data_loop_ = nullptr;
  }
  if (loop_ != nullptr) {
    pw_thread_loop_destroy(loop_);
    loop_ = nullptr;
  }
}

}  // namespace pipewire
}  // namespace procaudio
