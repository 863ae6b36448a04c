// SPDX-License-Identifier: LGPL-2.1-or-later
// One backend's target decisions and links: which application output stream nodes it
// captures (given its target, include/exclude tree and its own pid), and the links from
// their output ports to the input ports of its own capture stream, with their statistics.
// Driven by the backend (its RegistryListener and its capture stream's node id); everything
// but reset_stats() and stats() runs with the connection's thread loop locked. No GStreamer.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

#include "core/logger.h"
#include "core/target_spec.h"
#include "pipewire_backend.h"
#include "pw_connection.h"
#include "pw_registry.h"

namespace procaudio {
namespace pipewire {

// What a backend captures; set by open(), its root changed while following. No target (a
// validated TargetSpec allows that only with exclude-tree) is exclude-tree of no tree: every
// process but this one.
struct CaptureRule {
  TargetMode mode = TargetMode::kIncludeTree;
  uint32_t root_pid = 0;  // the target's tree's root (0: none, or not running)
  uint32_t self_pid = 0;
};

class TargetLinks {
 public:
  using LinkStats = PipeWireBackend::LinkStats;

  // Called with the thread loop locked.
  class Events {
   public:
    virtual ~Events() = default;
    // The number of stream nodes captured now changed to `streams`.
    virtual void on_captured_streams(uint32_t streams) = 0;
  };

  TargetLinks(const Logger &log, Events &events) : log_(log), events_(events) {}
  TargetLinks(const TargetLinks &) = delete;
  TargetLinks &operator=(const TargetLinks &) = delete;

  // ---- caller thread, while not attached to a connection (open(), close())
  void set_rule(const CaptureRule &rule) { rule_ = rule; }
  // The connection decisions and links are made on (null: none). Decisions belong to a
  // connection: the ones made on the last are forgotten.
  void set_connection(Connection *conn);

  // ---- thread loop locked
  // Is this stream node one we capture? Decided when its process is known (a node whose
  // process nobody can name is never captured), again when the rule's root changes.
  void decide(const StreamNode &node);
  // The tree captured is `root`'s now (0: none): every known node is decided again, and the
  // links of those no longer captured go.
  void set_root(uint32_t root);
  uint32_t root() const { return rule_.root_pid; }
  // Stream nodes captured now.
  uint32_t captured_streams() const;
  void on_stream_node_removed(const StreamNode &node);
  void on_port_added(const Port &port);
  void on_port_removed(uint32_t id);
  // Our capture stream's node is `id` (SPA_ID_INVALID: none now).
  void on_own_node(uint32_t id);
  // Between start() and stop(): links are wanted. start() counts the streams decided so far.
  void start();
  void stop();  // and all our links go
  // Links every captured output port to the input ports of ours it feeds, where missing.
  void update_links();

  // ---- statistics
  void reset_stats();  // caller thread, before start()
  LinkStats stats() const;
  // Links made and not failed (whether bound yet or not); read on the data loop, where no
  // link means that nothing of the target reaches the stream.
  const std::atomic<uint32_t> &live_links() const { return live_links_; }

 private:
  struct Link {
    TargetLinks *owner = nullptr;
    uint32_t out_port = 0;
    uint32_t in_port = 0;
    uint32_t out_node = 0;
    pw_proxy *proxy = nullptr;
    spa_hook listener{};
    bool bound = false;
    bool failed = false;
    uint64_t requested_ns = 0;
  };

  bool captures(const StreamNode &node) const;
  void count_stream(bool captured);
  void unlink_node(uint32_t node_id);
  void destroy_links_if(const std::function<bool(const Link &)> &which);
  void publish_streams();
  void make_link(uint32_t out_port, uint32_t out_node, uint32_t in_port);
  static void on_link_bound(void *data, uint32_t global_id);
  static void on_link_error(void *data, int seq, int res, const char *message);
  static void on_link_removed(void *data);
  static void on_relink_timer(void *data, uint64_t expirations);
  void schedule_relink();
  void destroy_link(Link *link);
  void destroy_all_links();
  void publish_link_count();

  const Logger &log_;
  Events &events_;
  CaptureRule rule_;            // caller thread; while attached, the thread loop (set_root)
  Connection *conn_ = nullptr;  // caller thread, read-only while attached

  // ---- thread loop locked
  uint32_t own_node_id_ = SPA_ID_INVALID;
  uint64_t own_port_ns_ = 0;  // when our latest input port appeared
  bool capturing_ = false;    // between start() and stop(): links are wanted
  // Stream nodes decided (once, when each appeared): id -> captured by this backend.
  std::map<uint32_t, bool> decided_;
  std::map<std::pair<uint32_t, uint32_t>, Link *> links_;  // (output port, input port)
  uint32_t published_streams_ = 0;                         // the last on_captured_streams()
  std::atomic<uint32_t> live_links_{0};
  // Relinks after another client destroyed a link of ours, on the loop's next iteration: by
  // then the removals that came with it (the port's own, when its stream went) are known.
  spa_source *relink_timer_ = nullptr;

  // Statistics, written on the thread loop, read anywhere.
  mutable std::mutex stats_mutex_;
  LinkStats stats_;
};

}  // namespace pipewire
}  // namespace procaudio
