// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pw_app_watch.h"

#include <unistd.h>

#include <string>
#include <utility>

#include "pw_connection.h"
#include "pw_registry.h"

namespace procaudio {
namespace pipewire {

namespace {

AppStream app_stream_of(const StreamNode &node) {
  AppStream stream;
  stream.id = node.id;
  stream.pid = node.resolved ? node.pid : 0;
  stream.running = node.running;
  stream.app_name = node.app_name;
  stream.app_id = node.app_id;
  return stream;
}

}  // namespace

struct AppWatch::Impl final : RegistryListener {
  Impl(Logger l, Events *e)
      : log(std::move(l)), events(e), apps(static_cast<uint32_t>(getpid()), find_root) {}

  Logger log;
  Events *events;  // null: only the list is kept (a probe)
  std::shared_ptr<Connection> conn;
  // Guarded by the connection's thread loop lock while attached.
  AppList apps;

  void tell(const AppList::Change &change) {
    if (events == nullptr) {
      return;
    }
    switch (change.kind) {
      case AppList::Change::Kind::kAdded:
        PROCAUDIO_DEBUG(log, "application pid %u '%s' plays (%u stream(s), %s)", change.app.pid,
                        change.app.display_name.c_str(), change.app.streams,
                        change.app.playing ? "running" : "not running");
        events->on_app_added(change.app);
        break;
      case AppList::Change::Kind::kChanged:
        PROCAUDIO_DEBUG(log, "application pid %u '%s': %u stream(s), %s", change.app.pid,
                        change.app.display_name.c_str(), change.app.streams,
                        change.app.playing ? "running" : "not running");
        events->on_app_changed(change.app);
        break;
      case AppList::Change::Kind::kRemoved:
        PROCAUDIO_DEBUG(log, "application pid %u '%s' plays no more", change.app.pid,
                        change.app.display_name.c_str());
        events->on_app_removed(change.app);
        break;
      case AppList::Change::Kind::kNone:
        break;
    }
  }

  // ---- events (thread loop locked)
  void on_attached(const Registry &registry) override {
    registry.for_each_stream_node([this](const StreamNode &node) {
      if (node.resolved) {
        tell(apps.update(app_stream_of(node)));
      }
    });
  }
  void on_stream_node(const StreamNode &node) override { tell(apps.update(app_stream_of(node))); }
  void on_stream_node_changed(const StreamNode &node) override {
    tell(apps.update(app_stream_of(node)));
  }
  void on_stream_node_removed(const StreamNode &node) override { tell(apps.remove(node.id)); }
  void on_port_added(uint32_t, const Port &) override {}
  void on_port_removed(uint32_t) override {}
  // Nothing more will come: what is listed is no longer known to play. The next start()
  // connects again.
  void on_connection_lost(const CaptureError &error) override {
    PROCAUDIO_WARNING(log, "%s (%s): no application is listed until the provider starts again",
                      error.message.c_str(), error.detail.c_str());
    for (const Application &app : apps.applications()) {
      AppList::Change change;
      change.kind = AppList::Change::Kind::kRemoved;
      change.app = app;
      tell(change);
    }
    apps.clear();
  }

  CaptureError attach() {
    // A shared connection found dead while syncing (the daemon died, the loss not seen yet)
    // is replaced once by a new one, as the backend does.
    CaptureError error;
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::shared_ptr<Connection> c;
      bool fresh = false;
      error = Connection::acquire(log, &c, &fresh);
      if (error) {
        break;
      }
      error = c->attach(this, log, fresh);
      if (!error) {
        conn = std::move(c);
        break;
      }
      apps.clear();
      if (fresh || !c->lost()) {
        break;
      }
    }
    if (error) {
      return error;
    }
    // The daemon's pids name nothing here when this process runs in a pid namespace of its
    // own (the backend refuses to start there for the same reason): list nothing rather than
    // wrong processes.
    conn->lock();
    const auto self_pid = static_cast<uint32_t>(getpid());
    if (conn->registry().has_clients() && !conn->registry().has_client_with_pid(self_pid)) {
      error = {ErrorKind::kBackendUnavailable,
               "This process runs in another pid namespace than the PipeWire daemon: its "
               "process ids name no process here, so no application can be listed.",
               "no PipeWire Client has pipewire.sec.pid " + std::to_string(self_pid)};
    }
    conn->unlock();
    if (error) {
      detach();
    }
    return error;
  }

  void detach() {
    if (conn != nullptr) {
      conn->detach(this);
      conn.reset();  // the last user of a connection tears it down, here
    }
    apps.clear();
  }
};

AppWatch::AppWatch(Logger log, Events *events) : impl_(new Impl(std::move(log), events)) {}

AppWatch::~AppWatch() {
  stop();
}

CaptureError AppWatch::start() {
  stop();
  return impl_->attach();
}

void AppWatch::stop() {
  impl_->detach();
}

CaptureError AppWatch::list(const Logger &log, std::vector<Application> *apps) {
  Impl impl(log, nullptr);
  apps->clear();
  if (CaptureError error = impl.attach()) {
    return error;
  }
  impl.conn->lock();
  *apps = impl.apps.applications();
  impl.conn->unlock();
  impl.detach();
  return {};
}

}  // namespace pipewire
}  // namespace procaudio
