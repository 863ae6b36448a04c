// SPDX-License-Identifier: LGPL-2.1-or-later
// The registry cache of one PipeWire connection: the Clients, the application output stream
// nodes (Stream/Output/Audio, each bound to read its full info) and the Ports the server
// announces, with the process each stream node belongs to. Whoever attaches a
// RegistryListener is told what changes; a listener that attaches late reads what is known.
//
// Owned by the Connection; everything here runs with its thread loop locked (registry events
// come on the thread loop). No GStreamer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/capture_error.h"

#include <pipewire/pipewire.h>

namespace procaudio {
namespace pipewire {

// An application output stream node (Stream/Output/Audio).
struct StreamNode {
  // The node's state (its info) is RUNNING: the graph runs it now. A paused, corked, idle
  // or suspended stream is not running; a stopped process's stream still is (the daemon
  // cannot tell), so this says what the application asked for, not that samples arrive.
  bool running = false;
  // The sandbox's application id (a Flatpak's "org.example.App") where the daemon or
  // pipewire-pulse put one on the node or its Client (pipewire.access.portal.app_id); ""
  // when none.
  std::string app_id;
  uint32_t id = 0;
  uint32_t client_id = 0;
  uint32_t app_pid = 0;           // application.process.id, as the node reported it (0: none)
  bool resolved = false;          // `pid` is known (0: no process could be named)
  uint32_t pid = 0;               // whose stream it is (Registry::resolve)
  std::string identity;           // how `pid` was found, for the log
  std::string name;               // node.name
  std::string app_name;           // application.name ("" when not given)
  std::string app_binary;         // application.process.binary ("" when not given)
  std::string client_api;         // client.api ("pipewire-pulse" for PulseAudio clients)
  std::string pulse_server_type;  // pulse.server.type ("unix", "tcp"; PulseAudio clients)
  std::string machine_id;         // application.process.machine-id ("" when not given)
  uint64_t last_port_ns = 0;      // when its latest output port appeared
};

struct Port {
  uint32_t node_id = 0;
  bool output = false;
  bool monitor = false;
  std::string channel;
};

class Registry;

// Called with the connection's thread loop locked: on the thread loop, but for on_attached(),
// which runs on the thread that attaches.
class RegistryListener {
 public:
  virtual ~RegistryListener() = default;
  // Right after the listener was attached and the cache synced: every global the server had
  // then is known. A listener that attaches late reads the cache here.
  virtual void on_attached(const Registry &registry) = 0;
  // A stream node's process is known (node.pid, or 0 when none could be named): once per node.
  virtual void on_stream_node(const StreamNode &node) = 0;
  // A stream node is gone (resolved or not), before the cache forgets it.
  virtual void on_stream_node_removed(const StreamNode &node) = 0;
  // A resolved stream node's `running` changed (its info's state). Most listeners do not
  // care whether a stream runs, so this one has a body.
  virtual void on_stream_node_changed(const StreamNode &node) {}
  virtual void on_port_added(uint32_t id, const Port &port) = 0;
  virtual void on_port_removed(uint32_t id) = 0;
  // The connection is lost (the daemon stopped or restarted): nothing more will come.
  virtual void on_connection_lost(const CaptureError &error) = 0;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry &) = delete;
  Registry &operator=(const Registry &) = delete;

  // Starts watching the registry of `core`.
  void watch(pw_core *core);
  // Every global the server had is known now (a sync completed): a stream node whose Client
  // is still not visible is resolved without it.
  void settle();
  // Forgets everything and stops watching.
  void clear();

  // Events go to `listener` from now on, in the order listeners were added.
  void add_listener(RegistryListener *listener);
  void remove_listener(RegistryListener *listener);

  // ---- read access
  // The stream node with this id, whose info may not be read yet; null if none.
  const StreamNode *find_stream_node(uint32_t id) const;
  // Every stream node whose info has been read (resolved or not), by id.
  void for_each_stream_node(const std::function<void(const StreamNode &)> &fn) const;
  // Every port, by id.
  const std::map<uint32_t, Port> &ports() const { return ports_; }
  // Whether any Client is known, and whether one has this kernel pid.
  bool has_clients() const { return !clients_.empty(); }
  bool has_client_with_pid(uint32_t pid) const;

 private:
  // (A Client global carries few properties in 0.3.65: the pipewire.sec.* ones, which no
  // client can set, are what is read of it.)
  struct Client {
    uint32_t sec_pid = 0;  // pipewire.sec.pid: the kernel's, from the socket
    std::string app_id;    // pipewire.access.portal.app_id, set by the daemon or the portal
  };
  // A stream node in the cache: its record and its bound proxy.
  struct Node {
    Registry *registry = nullptr;
    StreamNode record;
    pw_proxy *proxy = nullptr;
    spa_hook listener{};
    bool have_info = false;
  };

  static void on_global(void *data, uint32_t id, uint32_t permissions, const char *type,
                        uint32_t version, const struct spa_dict *props);
  static void on_global_remove(void *data, uint32_t id);
  static void on_node_info(void *data, const struct pw_node_info *info);
  void add_stream_node(uint32_t id, const struct spa_dict *props);
  void destroy_node(Node *node);
  void remove_node(Node *node);
  void resolve(Node &node, bool settled = false);
  void resolve_pending(bool settled = false);

  pw_registry *registry_ = nullptr;
  spa_hook registry_listener_{};
  std::map<uint32_t, Client> clients_;
  std::map<uint32_t, Node *> nodes_;
  std::map<uint32_t, Port> ports_;
  std::vector<RegistryListener *> listeners_;
};

}  // namespace pipewire
}  // namespace procaudio
