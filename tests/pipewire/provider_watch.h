// SPDX-License-Identifier: LGPL-2.1-or-later
// What the pipewireprocdeviceprovider tests share: the provider started, with its bus read
// into the devices shown now and every message, stamped on CLOCK_MONOTONIC; and the fixture
// (the session of pw_fixture.h, plus a paplay client).
#pragma once

#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/monotonic_clock.h"
#include "pw_fixture.h"

// A named namespace: both test files' TEST_F(ProviderTest, ...) must see one fixture class.
namespace procaudio {
namespace pwtest {

// What a device says of its application.
struct Shown {
  std::string name, api, process_name, app_name;
  guint pid = 0, streams = 0;
  gboolean playing = FALSE;
};

inline Shown shown_of(GstDevice *device) {
  Shown s;
  gchar *name = gst_device_get_display_name(device);
  s.name = name != nullptr ? name : "";
  g_free(name);
  GstStructure *props = gst_device_get_properties(device);
  if (props != nullptr) {
    const char *api = gst_structure_get_string(props, "device.api");
    const char *process = gst_structure_get_string(props, "procaudio.process-name");
    const char *app = gst_structure_get_string(props, "procaudio.application-name");
    s.api = api ? api : "";
    s.process_name = process ? process : "";
    s.app_name = app ? app : "";
    gst_structure_get_uint(props, "procaudio.pid", &s.pid);
    gst_structure_get_uint(props, "procaudio.streams", &s.streams);
    gst_structure_get_boolean(props, "procaudio.playing", &s.playing);
    gst_structure_free(props);
  }
  return s;
}

// The provider, started, and what its bus said: the devices now (by pid) and every message,
// each stamped on CLOCK_MONOTONIC as it was posted (the bus's sync handler runs in the
// thread that posts).
class Watch {
 public:
  struct Event {
    GstMessageType type;
    Shown shown;
    uint64_t ns;
  };

  Watch() {
    provider_ = gst_device_provider_factory_get_by_name("pipewireprocdeviceprovider");
    if (provider_ != nullptr) {
      bus_ = gst_device_provider_get_bus(provider_);
      gst_bus_set_sync_handler(bus_, &Watch::on_message, this, nullptr);
    }
  }
  ~Watch() {
    stop();
    if (bus_ != nullptr) {
      gst_bus_set_sync_handler(bus_, nullptr, nullptr, nullptr);
      gst_object_unref(bus_);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto &entry : devices_) {
      gst_object_unref(entry.second);
    }
    if (provider_ != nullptr) {
      gst_object_unref(provider_);
    }
  }

  GstDeviceProvider *provider() { return provider_; }
  bool start() { return provider_ != nullptr && (started_ = gst_device_provider_start(provider_)); }
  void stop() {
    if (started_) {
      gst_device_provider_stop(provider_);
      started_ = false;
    }
  }

  // Waits until `done` holds for the devices now (by pid).
  bool wait(const std::function<bool(const std::map<guint, Shown> &)> &done, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return done(shown_); });
  }
  // The first event of `type` about `pid` from event index `from` on, or null.
  const Event *find(GstMessageType type, guint pid, size_t from = 0) {
    for (size_t i = from; i < events_.size(); ++i) {
      if (events_[i].type == type && events_[i].shown.pid == pid) {
        return &events_[i];
      }
    }
    return nullptr;
  }
  bool wait_event(GstMessageType type, guint pid, int timeout_ms, uint64_t *ns, size_t from = 0) {
    std::unique_lock<std::mutex> lock(mutex_);
    const bool ok = cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                 [&] { return find(type, pid, from) != nullptr; });
    if (ok && ns != nullptr) {
      *ns = find(type, pid, from)->ns;
    }
    return ok;
  }
  size_t event_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_.size();
  }
  // A reference to the device shown for `pid` now, or null.
  GstDevice *device(guint pid) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = devices_.find(pid);
    return found != devices_.end() ? GST_DEVICE(gst_object_ref(found->second)) : nullptr;
  }

 private:
  static GstBusSyncReply on_message(GstBus *, GstMessage *message, gpointer data) {
    auto *self = static_cast<Watch *>(data);
    const uint64_t now = monotonic_now_ns();
    GstDevice *device = nullptr, *old_device = nullptr;
    switch (GST_MESSAGE_TYPE(message)) {
      case GST_MESSAGE_DEVICE_ADDED:
        gst_message_parse_device_added(message, &device);
        break;
      case GST_MESSAGE_DEVICE_REMOVED:
        gst_message_parse_device_removed(message, &device);
        break;
      case GST_MESSAGE_DEVICE_CHANGED:
        gst_message_parse_device_changed(message, &device, &old_device);
        break;
      default:
        gst_message_unref(message);
        return GST_BUS_DROP;
    }
    const Shown shown = shown_of(device);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->events_.push_back({GST_MESSAGE_TYPE(message), shown, now});
    GstDevice *&slot = self->devices_[shown.pid];
    if (slot != nullptr) {
      gst_object_unref(slot);
      slot = nullptr;
    }
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_DEVICE_REMOVED) {
      self->devices_.erase(shown.pid);
      self->shown_.erase(shown.pid);
      gst_object_unref(device);
    } else {
      slot = device;  // the parse's reference
      self->shown_[shown.pid] = shown;
    }
    if (old_device != nullptr) {
      gst_object_unref(old_device);
    }
    self->cv_.notify_all();
    gst_message_unref(message);  // a sync handler that drops a message owns it
    return GST_BUS_DROP;
  }

  GstDeviceProvider *provider_ = nullptr;
  GstBus *bus_ = nullptr;
  bool started_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<guint, GstDevice *> devices_;
  std::map<guint, Shown> shown_;
  std::vector<Event> events_;
};

class ProviderTest : public PipeWireBackendTest {
 protected:
  // paplay (a PulseAudio client) playing a WAV of `freq`; null (and a failure) without it.
  Child *paplay(double freq);
};

}  // namespace pwtest
}  // namespace procaudio
