// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pw_registry.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/monotonic_clock.h"
#include "proc_identity.h"
#include "process_util.h"

namespace procaudio {
namespace pipewire {

namespace {

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

// `*out` = the property, when it is there and not empty.
void read_string(const struct spa_dict *props, const char *key, std::string *out) {
  const char *value = spa_dict_lookup(props, key);
  if (value != nullptr && *value != '\0') {
    *out = value;
  }
}

// The sandbox's application id, as the access module, the portal or pipewire-pulse name it.
constexpr const char *kPortalAppId = "pipewire.access.portal.app_id";

}  // namespace

void Registry::watch(pw_core *core) {
  registry_ = pw_core_get_registry(core, PW_VERSION_REGISTRY, 0);
  static const pw_registry_events registry_events = [] {
    pw_registry_events events{};
    events.version = PW_VERSION_REGISTRY_EVENTS;
    events.global = &Registry::on_global;
    events.global_remove = &Registry::on_global_remove;
    return events;
  }();
  pw_registry_add_listener(registry_, &registry_listener_, &registry_events, this);
}

void Registry::clear() {
  for (auto &entry : nodes_) {
    destroy_node(entry.second);
  }
  nodes_.clear();
  ports_.clear();
  clients_.clear();
  if (registry_ != nullptr) {
    spa_hook_remove(&registry_listener_);
    pw_proxy_destroy(reinterpret_cast<pw_proxy *>(registry_));
    registry_ = nullptr;
  }
}

void Registry::add_listener(RegistryListener *listener) {
  listeners_.push_back(listener);
}

void Registry::remove_listener(RegistryListener *listener) {
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener), listeners_.end());
}

const StreamNode *Registry::find_stream_node(uint32_t id) const {
  auto node = nodes_.find(id);
  return node != nodes_.end() ? &node->second->record : nullptr;
}

bool Registry::has_client_with_pid(uint32_t pid) const {
  for (const auto &entry : clients_) {
    if (entry.second.sec_pid == pid) {
      return true;
    }
  }
  return false;
}

void Registry::for_each_stream_node(const std::function<void(const StreamNode &)> &fn) const {
  for (const auto &entry : nodes_) {
    if (entry.second->have_info) {
      fn(entry.second->record);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Events (thread loop)

void Registry::on_global(void *data, uint32_t id, uint32_t permissions, const char *type,
                         uint32_t version, const struct spa_dict *props) {
  auto *self = static_cast<Registry *>(data);
  if (props == nullptr) {
    return;
  }
  if (std::strcmp(type, PW_TYPE_INTERFACE_Client) == 0) {
    Client &client = self->clients_[id];
    client.sec_pid = parse_u32(spa_dict_lookup(props, PW_KEY_SEC_PID));
    read_string(props, kPortalAppId, &client.app_id);
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
    const Port &stored = self->ports_[id] = port;
    if (port.output) {
      auto node = self->nodes_.find(port.node_id);
      if (node != self->nodes_.end()) {
        node->second->record.last_port_ns = monotonic_now_ns();
      }
    }
    for (RegistryListener *listener : self->listeners_) {
      listener->on_port_added(id, stored);
    }
  }
}

void Registry::on_global_remove(void *data, uint32_t id) {
  auto *self = static_cast<Registry *>(data);
  self->clients_.erase(id);
  auto node = self->nodes_.find(id);
  if (node != self->nodes_.end()) {
    self->remove_node(node->second);
    self->nodes_.erase(node);
  }
  if (self->ports_.erase(id) != 0) {
    for (RegistryListener *listener : self->listeners_) {
      listener->on_port_removed(id);
    }
  }
}

void Registry::add_stream_node(uint32_t id, const struct spa_dict *props) {
  auto *node = new Node();
  node->registry = this;
  StreamNode &record = node->record;
  record.id = id;
  record.client_id = parse_u32(spa_dict_lookup(props, PW_KEY_CLIENT_ID));
  record.app_pid = parse_u32(spa_dict_lookup(props, PW_KEY_APP_PROCESS_ID));
  const char *name = spa_dict_lookup(props, PW_KEY_NODE_NAME);
  record.name = name ? name : "";
  read_string(props, PW_KEY_APP_NAME, &record.app_name);
  read_string(props, PW_KEY_APP_PROCESS_BINARY, &record.app_binary);
  read_string(props, PW_KEY_CLIENT_API, &record.client_api);
  // The global's properties are a subset: a pipewire-pulse client's stream says whose it is
  // (application.process.id) only in the node's full info, so bind the node and read it.
  node->proxy = static_cast<pw_proxy *>(
      pw_registry_bind(registry_, id, PW_TYPE_INTERFACE_Node, PW_VERSION_NODE, 0));
  auto old = nodes_.find(id);
  if (old != nodes_.end()) {
    remove_node(old->second);
  }
  nodes_[id] = node;
  if (node->proxy == nullptr) {
    node->have_info = true;  // decide from what the global said
    resolve(*node);
    return;
  }
  static const pw_node_events node_events = [] {
    pw_node_events events{};
    events.version = PW_VERSION_NODE_EVENTS;
    events.info = &Registry::on_node_info;
    return events;
  }();
  pw_node_add_listener(reinterpret_cast<pw_node *>(node->proxy), &node->listener, &node_events,
                       node);
}

void Registry::on_node_info(void *data, const struct pw_node_info *info) {
  auto *node = static_cast<Node *>(data);
  Registry *self = node->registry;
  StreamNode &record = node->record;
  const bool running = info->state == PW_NODE_STATE_RUNNING;
  if (node->have_info) {
    // Later infos: only whether it runs matters (a player paused or resumed, the session
    // manager suspending an idle sink); whose stream it is was decided on the first.
    if ((info->change_mask & PW_NODE_CHANGE_MASK_STATE) != 0 && running != record.running) {
      record.running = running;
      if (record.resolved) {
        for (RegistryListener *listener : self->listeners_) {
          listener->on_stream_node_changed(record);
        }
      }
    }
    return;
  }
  record.running = running;
  if (info->props != nullptr) {
    const uint32_t app_pid = parse_u32(spa_dict_lookup(info->props, PW_KEY_APP_PROCESS_ID));
    if (app_pid != 0) {
      record.app_pid = app_pid;
    }
    const uint32_t client_id = parse_u32(spa_dict_lookup(info->props, PW_KEY_CLIENT_ID));
    if (client_id != 0) {
      record.client_id = client_id;
    }
    read_string(info->props, PW_KEY_APP_NAME, &record.app_name);
    read_string(info->props, PW_KEY_APP_PROCESS_BINARY, &record.app_binary);
    read_string(info->props, PW_KEY_CLIENT_API, &record.client_api);
    read_string(info->props, "pulse.server.type", &record.pulse_server_type);
    read_string(info->props, PW_KEY_APP_PROCESS_MACHINE_ID, &record.machine_id);
    read_string(info->props, kPortalAppId, &record.app_id);
  }
  node->have_info = true;
  self->resolve(*node);
}

void Registry::destroy_node(Node *node) {
  if (node->proxy != nullptr) {
    spa_hook_remove(&node->listener);
    pw_proxy_destroy(node->proxy);
    node->proxy = nullptr;
  }
  delete node;
}

// The listeners forget it first: it goes with its links.
void Registry::remove_node(Node *node) {
  for (RegistryListener *listener : listeners_) {
    listener->on_stream_node_removed(node->record);
  }
  destroy_node(node);
}

// Whose stream is it? The kernel's word: a client's Client carries pipewire.sec.pid, the pid
// the daemon read from the socket (in the daemon's pid namespace, the host's), and no client
// can set it. That wins over any application.process.id a client reports, but for a
// PulseAudio client: its Client is pipewire-pulse (its sec.pid is that daemon's, by whose
// comm this is checked: client.api is the client's own word), so its stream's process is the
// one it reported, on this machine (pulse.server.type "unix", its machine id ours), and a
// sandboxed client reports the pid it has in its own namespace: that is mapped to a host pid
// with its binary, never taken as is (proc_identity.h). A stream none of this names is
// nobody's. Left unresolved while its Client global has not been seen (it comes first,
// normally), until the registry is settled; once resolved, every listener hears of it (and a
// backend decides whether it captures it).
void Registry::resolve(Node &node, bool settled) {
  StreamNode &record = node.record;
  const Client *client = nullptr;
  if (record.client_id != 0) {
    auto found = clients_.find(record.client_id);
    if (found != clients_.end()) {
      client = &found->second;
    } else if (!settled) {
      return;
    }
  }
  const uint32_t kernel_pid = client != nullptr ? client->sec_pid : 0;
  if (record.app_id.empty() && client != nullptr) {
    record.app_id = client->app_id;
  }
  const bool via_pulse = record.client_api == "pipewire-pulse" && kernel_pid != 0 &&
                         pipewire::comm(kernel_pid) == "pipewire-pulse";
  record.pid = 0;
  if (kernel_pid == 0) {
    record.identity = "its client's kernel pid is not visible";
  } else if (!via_pulse) {
    record.pid = kernel_pid;
    record.identity = "kernel pid " + std::to_string(kernel_pid);
    if (record.app_pid != 0 && record.app_pid != kernel_pid) {
      record.identity += " (it reported " + std::to_string(record.app_pid) + ")";
    }
  } else if (record.pulse_server_type == "tcp" ||
             (!record.machine_id.empty() && record.machine_id != pipewire::machine_id())) {
    record.identity = "a PulseAudio client of another machine";
  } else if (record.app_pid == 0) {
    record.identity = "a PulseAudio client that gave no pid";
  } else {
    const std::string &binary = record.app_binary;
    std::vector<uint32_t> candidates;
    record.pid = pipewire::map_reported_pid(record.app_pid, binary, &candidates);
    record.identity = "reported pid " + std::to_string(record.app_pid) + " of '" + binary + "'";
    if (candidates.empty()) {
      record.identity +=
          binary.empty() ? ": no binary to tell which process it is" : ": no such process here";
    } else if (candidates.size() > 1) {
      record.identity += ": ambiguous, candidates";
      for (uint32_t candidate : candidates) {
        record.identity += " " + std::to_string(candidate);
      }
    } else if (record.pid != record.app_pid) {
      record.identity += " in a pid namespace: host pid " + std::to_string(record.pid);
    }
  }
  record.resolved = true;
  for (RegistryListener *listener : listeners_) {
    listener->on_stream_node(record);
  }
}

void Registry::resolve_pending(bool settled) {
  for (auto &entry : nodes_) {
    Node &node = *entry.second;
    if (node.have_info && !node.record.resolved) {
      resolve(node, settled);
    }
  }
}

void Registry::settle() {
  resolve_pending(true);
}

}  // namespace pipewire
}  // namespace procaudio
