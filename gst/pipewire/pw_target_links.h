// One backend's target decisions and links: which application output stream nodes it
// captures (given its target, include/exclude tree and its own pid), and the links from
// their output ports to the input ports of its own capture stream, with their statistics.
// Driven by the backend (its RegistryListener and its capture stream's node id); everything
// but reset_stats() and stats() runs with the connection's thread loop locked. No GStreamer.
#pragma once

#include <cstdint>
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

// What a backend captures; set by open().
struct CaptureRule {
  bool has_target = false;  // false: every process but this one
  TargetMode mode = TargetMode::kIncludeTree;
  uint32_t root_pid = 0;
  uint32_t self_pid = 0;
};

class TargetLinks {
 public:
  using LinkStats = PipeWireBackend::LinkStats;

  explicit TargetLinks(const Logger &log) : log_(log) {}
  TargetLinks(const TargetLinks &) = delete;
  TargetLinks &operator=(const TargetLinks &) = delete;

  // ---- caller thread, while not attached to a connection (open(), close())
  void set_rule(const CaptureRule &rule) { rule_ = rule; }
  // The connection decisions and links are made on (null: none). Decisions belong to a
  // connection: the ones made on the last are forgotten.
  void set_connection(Connection *conn);

  // ---- thread loop locked
  // Is this stream node one we capture? Decided once per node: when its process is known,
  // or (`force`, when attached) now, with whatever is known.
  void decide(const StreamNode &node, bool force = false);
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

  void count_stream(bool captured);
  void make_link(uint32_t out_port, uint32_t out_node, uint32_t in_port);
  static void on_link_bound(void *data, uint32_t global_id);
  static void on_link_error(void *data, int seq, int res, const char *message);
  void destroy_link(Link *link);
  void destroy_all_links();
  void publish_link_count();

  const Logger &log_;
  CaptureRule rule_;            // caller thread, read-only while attached
  Connection *conn_ = nullptr;  // caller thread, read-only while attached

  // ---- thread loop locked
  uint32_t own_node_id_ = SPA_ID_INVALID;
  uint64_t own_port_ns_ = 0;  // when our latest input port appeared
  bool capturing_ = false;    // between start() and stop(): links are wanted
  // Stream nodes decided (once, when each appeared): id -> captured by this backend.
  std::map<uint32_t, bool> decided_;
  std::map<std::pair<uint32_t, uint32_t>, Link *> links_;  // (output port, input port)

  // Statistics, written on the thread loop, read anywhere.
  mutable std::mutex stats_mutex_;
  LinkStats stats_;
};

}  // namespace pipewire
}  // namespace procaudio
