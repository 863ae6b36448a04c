// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pw_target_links.h"

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "core/monotonic_clock.h"
#include "process_util.h"

#include <spa/utils/result.h>

namespace procaudio {
namespace pipewire {

namespace {

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

}  // namespace

void TargetLinks::set_connection(Connection *conn) {
  conn_ = conn;
  decided_.clear();
  published_streams_ = 0;
}

// ------------------------------------------------------------------------------------------
// Decisions (thread loop)

bool TargetLinks::captures(const StreamNode &node) const {
  const uint32_t pid = node.resolved ? node.pid : 0;
  // Fail closed: a stream whose process nobody can name is nobody's to capture, whatever the
  // mode, and ours never is.
  if (pid == 0 || pid == rule_.self_pid) {
    return false;
  }
  const bool in_tree = rule_.root_pid != 0 && pipewire::is_in_tree(pid, rule_.root_pid);
  return rule_.mode == TargetMode::kIncludeTree ? in_tree : !in_tree;
}

void TargetLinks::decide(const StreamNode &node) {
  if (!node.resolved) {
    return;
  }
  const bool captured = captures(node);
  const auto before = decided_.find(node.id);
  const bool known = before != decided_.end();
  if (known && before->second == captured) {
    return;
  }
  decided_[node.id] = captured;
  if (log_.wants(LogLevel::kInfo)) {  // pipewire::comm reads /proc: only for a reader
    PROCAUDIO_INFO(log_, "stream node %u '%s' of pid %u (%s; %s): %s", node.id, node.name.c_str(),
                   node.pid, node.pid ? pipewire::comm(node.pid).c_str() : "unknown process",
                   node.identity.c_str(), captured ? "captured" : "not captured");
  }
  if (capturing_ && !known) {
    count_stream(captured);
  }
  if (captured) {
    update_links();
  } else if (known) {
    unlink_node(node.id);
  }
  publish_streams();
}

void TargetLinks::set_root(uint32_t root) {
  if (root == rule_.root_pid) {
    return;
  }
  rule_.root_pid = root;
  if (conn_ == nullptr) {
    return;
  }
  conn_->registry().for_each_stream_node([this](const StreamNode &node) { decide(node); });
}

uint32_t TargetLinks::captured_streams() const {
  uint32_t n = 0;
  for (const auto &entry : decided_) {
    n += entry.second ? 1 : 0;
  }
  return n;
}

void TargetLinks::publish_streams() {
  const uint32_t n = captured_streams();
  if (n != published_streams_) {
    published_streams_ = n;
    events_.on_captured_streams(n);
  }
}

void TargetLinks::unlink_node(uint32_t node_id) {
  destroy_links_if([node_id](const Link &link) { return link.out_node == node_id; });
}

void TargetLinks::destroy_links_if(const std::function<bool(const Link &)> &which) {
  bool changed = false;
  for (auto it = links_.begin(); it != links_.end();) {
    if (which(*it->second)) {
      destroy_link(it->second);
      it = links_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (changed) {
    publish_link_count();
  }
}

void TargetLinks::count_stream(bool captured) {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  (captured ? stats_.streams_captured : stats_.streams_skipped)++;
}

void TargetLinks::on_stream_node_removed(const StreamNode &node) {
  PROCAUDIO_DEBUG(log_, "stream node %u '%s' (pid %u) is gone", node.id, node.name.c_str(),
                  node.pid);
  decided_.erase(node.id);
  publish_streams();
}

void TargetLinks::on_port_added(const Port &port) {
  if (!port.output && port.node_id == own_node_id_) {
    own_port_ns_ = monotonic_now_ns();
  }
  // Only our own ports or those of a node we capture can make new links.
  const auto decision = decided_.find(port.node_id);
  if (port.node_id == own_node_id_ || (decision != decided_.end() && decision->second)) {
    update_links();
  }
}

void TargetLinks::on_port_removed(uint32_t id) {
  // The server removed the port's links with it; forget ours.
  destroy_links_if([id](const Link &link) { return link.out_port == id || link.in_port == id; });
}

void TargetLinks::on_own_node(uint32_t id) {
  own_node_id_ = id;
  if (id == SPA_ID_INVALID) {
    return;
  }
  own_port_ns_ = monotonic_now_ns();  // its ports are usable from now on
  update_links();
}

void TargetLinks::start() {
  for (const auto &entry : decided_) {
    count_stream(entry.second);  // streams already there; later ones count in decide()
  }
  capturing_ = true;
}

void TargetLinks::stop() {
  capturing_ = false;
  if (relink_timer_ != nullptr) {
    pw_loop_destroy_source(conn_->loop(), relink_timer_);
    relink_timer_ = nullptr;
  }
  destroy_all_links();
}

// ------------------------------------------------------------------------------------------
// Links (thread loop)

void TargetLinks::update_links() {
  if (!capturing_ || own_node_id_ == SPA_ID_INVALID || conn_->lost()) {
    return;
  }
  const std::map<uint32_t, Port> &ports = conn_->registry().ports();
  std::vector<std::pair<uint32_t, const Port *>> inputs;
  for (const auto &entry : ports) {
    if (entry.second.node_id == own_node_id_ && !entry.second.output) {
      inputs.emplace_back(entry.first, &entry.second);
    }
  }
  if (inputs.empty()) {
    return;  // our ports are not there yet; their globals call us again
  }
  for (const auto &entry : ports) {
    const Port &out = entry.second;
    if (!out.output || out.monitor) {
      continue;
    }
    auto decision = decided_.find(out.node_id);
    if (decision == decided_.end() || !decision->second) {
      continue;
    }
    for (const auto &in : inputs) {
      // A 1-channel capture still takes FL and FR from PipeWire and downmixes itself, so
      // every target channel has a place.
      if (!channel_feeds(out.channel, in.second->channel)) {
        continue;
      }
      const auto key = std::make_pair(entry.first, in.first);
      if (links_.count(key) == 0) {
        make_link(entry.first, out.node_id, in.first);
      }
    }
  }
}

void TargetLinks::make_link(uint32_t out_port, uint32_t out_node, uint32_t in_port) {
  pw_properties *props = pw_properties_new(nullptr, nullptr);
  pw_properties_setf(props, PW_KEY_LINK_OUTPUT_NODE, "%u", out_node);
  pw_properties_setf(props, PW_KEY_LINK_OUTPUT_PORT, "%u", out_port);
  pw_properties_setf(props, PW_KEY_LINK_INPUT_NODE, "%u", own_node_id_);
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
      conn_->core(), "link-factory", PW_TYPE_INTERFACE_Link, PW_VERSION_LINK, &props->dict, 0));
  pw_properties_free(props);
  if (link->proxy == nullptr) {
    const int err = errno;
    PROCAUDIO_WARNING(log_, "cannot link port %u to port %u: %s", out_port, in_port,
                      errno_text(err).c_str());
    link->failed = true;
    links_[{out_port, in_port}] = link;
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      stats_.links_failed++;
    }
    return;
  }
  static const pw_proxy_events proxy_events = [] {
    pw_proxy_events events{};
    events.version = PW_VERSION_PROXY_EVENTS;
    events.bound = &TargetLinks::on_link_bound;
    events.error = &TargetLinks::on_link_error;
    events.removed = &TargetLinks::on_link_removed;
    return events;
  }();
  pw_proxy_add_listener(link->proxy, &link->listener, &proxy_events, link);
  links_[{out_port, in_port}] = link;
  publish_link_count();
  PROCAUDIO_DEBUG(log_, "linking node %u port %u -> node %u port %u", out_node, out_port,
                  own_node_id_, in_port);
}

void TargetLinks::on_link_bound(void *data, uint32_t global_id) {
  auto *link = static_cast<Link *>(data);
  TargetLinks *self = link->owner;
  if (link->bound) {
    return;
  }
  link->bound = true;
  const uint64_t now = monotonic_now_ns();
  // From when the link could first have been made: both its ports existed.
  uint64_t since = link->requested_ns;
  const StreamNode *node = self->conn_->registry().find_stream_node(link->out_node);
  if (node != nullptr && node->last_port_ns != 0) {
    since = std::min(since, std::max(node->last_port_ns, self->own_port_ns_));
  }
  PROCAUDIO_DEBUG(self->log_, "link %u up: port %u -> port %u, %.2f ms after the port appeared",
                  global_id, link->out_port, link->in_port, (now - since) / 1e6);
  {
    std::lock_guard<std::mutex> lock(self->stats_mutex_);
    self->stats_.links_made++;
    self->stats_.max_link_delay_ns = std::max(self->stats_.max_link_delay_ns, now - since);
  }
  self->publish_link_count();
}

void TargetLinks::on_link_error(void *data, int seq, int res, const char *message) {
  auto *link = static_cast<Link *>(data);
  TargetLinks *self = link->owner;
  PROCAUDIO_WARNING(self->log_, "PipeWire refused the link port %u -> port %u: %s (%s)",
                    link->out_port, link->in_port, message ? message : "", spa_strerror(res));
  if (!link->failed) {
    link->failed = true;
    {
      std::lock_guard<std::mutex> lock(self->stats_mutex_);
      self->stats_.links_failed++;
    }
    self->publish_link_count();
  }
}

// The server removed a link of ours that we did not destroy: another client did (a patchbay
// user, `pw-cli destroy`), or its port went with its stream. Forgotten now, and made again
// if its ports are still there: the capture never silently loses its target.
void TargetLinks::on_link_removed(void *data) {
  auto *link = static_cast<Link *>(data);
  TargetLinks *self = link->owner;
  const auto key = std::make_pair(link->out_port, link->in_port);
  auto it = self->links_.find(key);
  if (it == self->links_.end() || it->second != link) {
    return;
  }
  self->links_.erase(it);
  PROCAUDIO_INFO(self->log_,
                 "link port %u -> port %u was removed by the server: linking again if its "
                 "ports remain",
                 link->out_port, link->in_port);
  self->destroy_link(link);
  self->publish_link_count();
  self->schedule_relink();
}

void TargetLinks::schedule_relink() {
  if (!capturing_ || conn_ == nullptr) {
    return;
  }
  if (relink_timer_ == nullptr) {
    relink_timer_ = pw_loop_add_timer(conn_->loop(), &TargetLinks::on_relink_timer, this);
    if (relink_timer_ == nullptr) {
      update_links();
      return;
    }
  }
  struct timespec soon = {0, 1};  // relative: the loop's next iteration
  pw_loop_update_timer(conn_->loop(), relink_timer_, &soon, nullptr, false);
}

void TargetLinks::on_relink_timer(void *data, uint64_t) {
  auto *self = static_cast<TargetLinks *>(data);
  const size_t before = self->links_.size();
  self->update_links();
  // Made again: their ports were still there, so someone else had destroyed them.
  if (self->links_.size() > before) {
    std::lock_guard<std::mutex> lock(self->stats_mutex_);
    self->stats_.links_lost += static_cast<uint32_t>(self->links_.size() - before);
  }
}

void TargetLinks::destroy_link(Link *link) {
  if (link->proxy != nullptr) {
    spa_hook_remove(&link->listener);
    // Destroying the proxy of a (non-lingering) object this client created destroys the
    // object on the server too; if the server already removed it, this only frees the proxy.
    pw_proxy_destroy(link->proxy);
    link->proxy = nullptr;
  }
  delete link;
}

void TargetLinks::destroy_all_links() {
  for (auto &entry : links_) {
    destroy_link(entry.second);
  }
  links_.clear();
  publish_link_count();
}

void TargetLinks::publish_link_count() {
  uint32_t active = 0, live = 0;
  for (const auto &entry : links_) {
    active += entry.second->bound && !entry.second->failed ? 1 : 0;
    live += entry.second->failed ? 0 : 1;
  }
  live_links_.store(live, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(stats_mutex_);
  stats_.links_active = active;
}

// ------------------------------------------------------------------------------------------
// Statistics

void TargetLinks::reset_stats() {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  stats_ = {};
}

TargetLinks::LinkStats TargetLinks::stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return stats_;
}

}  // namespace pipewire
}  // namespace procaudio
