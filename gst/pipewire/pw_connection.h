// SPDX-License-Identifier: LGPL-2.1-or-later
// The shared connection.
//
// One per PipeWire server (socket) and process, shared by every PipeWireBackend talking to
// that server, reference-counted like pipewiresrc's GstPipeWireCore: the thread loop, the
// context (and with it the one data loop every capture stream of this process runs on), the
// core and the registry watch (the Registry cache). Each backend keeps its own capture stream,
// its own decisions about which stream nodes it captures, and its own links.
//
// Why: a connection of its own per backend meant a data-loop thread of its own per capture
// stream, each woken by the graph every cycle; with ten sources that was ten threads woken
// ~50 times a second each where one thread serves them all.
//
// Threads and locks:
//   - the connection's thread loop lock guards all of it and every attached backend's
//     PipeWire state (stream, links, decisions); registry and core events run under it;
//   - every pw_loop_invoke() onto the shared data loop is made with that lock held (invoke()):
//     libspa's invoke queue (0.3.x) has a single writer and a single ack eventfd, so two
//     threads invoking at once would corrupt it or steal each other's acks;
//   - the data loop thread never takes the thread loop lock (and the sinks it calls never
//     block), so holding the lock across a blocking invoke cannot deadlock;
//   - the process-wide table of connections has its own mutex, taken only by open() (never
//     on a loop thread, never while holding a loop lock);
//   - a connection is destroyed by whoever drops the last reference: a backend's close(), on
//     the caller's thread, never on a loop thread.
// Loss: a core error marks the connection lost (an atomic), every attached listener hears
// on_connection_lost() (a backend hands kDeviceLost to its sink); the table then hands out a
// new connection to the next open(); the lost one lives until its last backend closes.
// No GStreamer.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/capture_error.h"
#include "core/logger.h"
#include "pw_registry.h"

namespace procaudio {
namespace pipewire {

// How long open()/start() wait for the server, at most.
constexpr int kServerTimeoutMs = 5000;

class Connection {
 public:
  // Told of an idle tick, on the data loop, once its deadline (arm_idle_tick()) passed.
  class IdleClient {
   public:
    virtual ~IdleClient() = default;
    virtual void on_idle_tick(uint64_t now_ns) = 0;
  };

  Connection() = default;
  ~Connection() { teardown(); }
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  // The connection to the server the environment names now: the shared one, or a new one
  // when there is none yet or the one there is was lost. `fresh`: made by this call.
  static CaptureError acquire(const Logger &log, std::shared_ptr<Connection> *out, bool *fresh);

  // Registry and core events go to `listener` from now on (core errors are logged to `log`).
  // A shared connection is synced first (two round trips, as a new one was); then, still
  // locked, the listener hears on_attached() and reads what is known. On an error it is
  // detached again.
  CaptureError attach(RegistryListener *listener, const Logger &log, bool fresh);
  // No event reaches `listener` after this returns, and nothing queued on the data loop
  // before it (an error for its backend) is still pending.
  void detach(RegistryListener *listener);

  // The socket, as describe_socket() named it.
  const std::string &key() const { return key_; }
  // Set on the thread loop, read anywhere.
  bool lost() const { return lost_.load(); }
  // Why it was lost: set once, before lost() turns true.
  const std::string &lost_error() const { return lost_error_; }

  // ---- the thread loop (locked)
  void lock() { pw_thread_loop_lock(loop_); }
  void unlock() { pw_thread_loop_unlock(loop_); }
  void signal() { pw_thread_loop_signal(loop_, false); }

  template <typename Done>
  bool wait_until(Done done, int timeout_ms) {
    struct timespec abstime;
    pw_thread_loop_get_time(loop_, &abstime, static_cast<int64_t>(timeout_ms) * 1'000'000);
    while (!done()) {
      if (pw_thread_loop_timed_wait_full(loop_, &abstime) == -ETIMEDOUT) {
        return done();
      }
    }
    return true;
  }

  // Thread loop locked.
  pw_core *core() const { return core_; }
  // For sources added and removed on the thread loop (its lock held).
  pw_loop *loop() const { return pw_thread_loop_get_loop(loop_); }
  Registry &registry() { return registry_; }
  const Registry &registry() const { return registry_; }

  // ---- the data loop
  // Runs `func` there (`block`: and waits until it ran). Thread loop locked: the rule above.
  int invoke(spa_invoke_func_t func, const void *data, size_t size, bool block, void *user) {
    return pw_loop_invoke(data_loop_, func, 0, data, size, block, user);
  }
  // For sources added and removed on the data loop thread.
  pw_loop *data_loop() const { return data_loop_; }
  // Data loop only: `client` gets on_idle_tick() once `deadline_ns` (monotonic; UINT64_MAX:
  // never) has passed; arming again moves its deadline. One timer serves every client, set
  // for the earliest deadline: no tick while packets keep the deadlines ahead.
  void arm_idle_tick(IdleClient *client, uint64_t deadline_ns);
  void disarm_idle_tick(IdleClient *client);

 private:
  bool roundtrip(int timeout_ms);
  // Thread loop locked. Two round trips: the first brings every global, the second the
  // infos of the stream nodes bound on the way. An error if the server does not answer.
  CaptureError sync_all();

  // ---- events (thread loop)
  static void on_core_done(void *data, uint32_t id, int seq);
  static void on_core_error(void *data, uint32_t id, int seq, int res, const char *message);

  // ---- the data loop
  static void on_idle_tick(void *data, uint64_t expirations);
  static int do_barrier(struct spa_loop *, bool, uint32_t, const void *, size_t, void *) {
    return 0;
  }
  static int do_destroy_idle_timer(struct spa_loop *, bool, uint32_t, const void *, size_t,
                                   void *user);
  void update_idle_timer();

  CaptureError connect(const Logger &log);
  void teardown();

  struct Attached {
    RegistryListener *listener;
    const Logger *log;
  };

  std::string key_;

  // ---- PipeWire objects; touched with the thread loop locked (or on its thread)
  pw_thread_loop *loop_ = nullptr;
  pw_context *context_ = nullptr;
  pw_core *core_ = nullptr;
  spa_hook core_listener_{};
  pw_loop *data_loop_ = nullptr;
  std::atomic<bool> lost_{false};
  std::string lost_error_;
  std::set<int> pending_syncs_;
  Registry registry_;
  std::vector<Attached> attached_;

  // ---- data loop only
  struct Armed {
    IdleClient *client;
    uint64_t deadline_ns;
  };
  std::vector<Armed> armed_;  // captures whose sinks are live
  spa_source *idle_timer_ = nullptr;
  uint64_t timer_deadline_ns_ = UINT64_MAX;  // what idle_timer_ is set for
};

}  // namespace pipewire
}  // namespace procaudio
