// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapiprocdeviceprovider under GStreamer, linked in (not loaded from the plugin DLL) so that
// its session managers can be COM fakes, with real child processes playing: one device per
// application with its properties and caps; DEVICE_CHANGED, _ADDED and _REMOVED as sessions
// stop, appear and end; the element a device creates; probe(); 200 starts and stops giving
// every COM reference back. And, under wine's real audio stack (run by linux_side.py), a
// start() that fails with a warning naming what wine does not implement.
#include <windows.h>
// (windows.h first)
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "session_fakes.h"
#include "test_support.h"
#include "wasapi/com_thread.h"
#include "wasapi/endpoints.h"
#include "wasapi/gstwasapiprocdeviceprovider.h"
#include "wasapi/gstwasapiprocsrc.h"
#include "wasapi/process_util.h"
#include "wasapi/win_string.h"

namespace procaudio {
namespace wasapi {
namespace {

using Microsoft::WRL::ComPtr;
using testing::ChildCopy;
using testing::ChildProcess;
using testing::FakeSessionControl;
using testing::FakeSessionManager;
using testing::FakeSessionManagers;

// What a device says of its application.
struct Shown {
  std::string name, api, device_class, process_name, app_name;
  guint pid = 0, streams = 0;
  gboolean playing = FALSE;
};

Shown shown_of(GstDevice *device) {
  Shown s;
  gchar *name = gst_device_get_display_name(device);
  gchar *device_class = gst_device_get_device_class(device);
  s.name = name != nullptr ? name : "";
  s.device_class = device_class != nullptr ? device_class : "";
  g_free(name);
  g_free(device_class);
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

// One message of the provider's bus, waited for (bounded: the provider posts from the
// session watch's worker after the fake's notification returned).
struct Posted {
  GstMessageType type = GST_MESSAGE_UNKNOWN;
  Shown shown;      // the device added or removed, or the new one of a change
  Shown old_shown;  // DEVICE_CHANGED: the one it replaces
};

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    provider_ = GST_DEVICE_PROVIDER(
        gst_object_ref_sink(g_object_new(GST_TYPE_WASAPI_PROC_DEVICE_PROVIDER, nullptr)));
    speakers_ = FakeSessionManager::make();
    managers_ =
        std::make_shared<FakeSessionManagers>(std::vector<ComPtr<FakeSessionManager>>{speakers_});
    gst_wasapi_proc_device_provider_set_session_managers(GST_WASAPI_PROC_DEVICE_PROVIDER(provider_),
                                                         managers_);
    bus_ = gst_device_provider_get_bus(provider_);
  }
  void TearDown() override {
    if (gst_device_provider_is_started(provider_)) {
      gst_device_provider_stop(provider_);
    }
    gst_object_unref(bus_);
    gst_object_unref(provider_);
  }

  bool next(Posted &posted, GstClockTime timeout = 10 * GST_SECOND) {
    GstMessage *message = gst_bus_timed_pop_filtered(
        bus_, timeout,
        static_cast<GstMessageType>(GST_MESSAGE_DEVICE_ADDED | GST_MESSAGE_DEVICE_REMOVED |
                                    GST_MESSAGE_DEVICE_CHANGED));
    if (message == nullptr) {
      return false;
    }
    posted = {};
    posted.type = GST_MESSAGE_TYPE(message);
    GstDevice *device = nullptr, *old_device = nullptr;
    switch (posted.type) {
      case GST_MESSAGE_DEVICE_ADDED:
        gst_message_parse_device_added(message, &device);
        break;
      case GST_MESSAGE_DEVICE_REMOVED:
        gst_message_parse_device_removed(message, &device);
        break;
      default:
        gst_message_parse_device_changed(message, &device, &old_device);
        break;
    }
    posted.shown = shown_of(device);
    gst_object_unref(device);
    if (old_device != nullptr) {
      posted.old_shown = shown_of(old_device);
      gst_object_unref(old_device);
    }
    gst_message_unref(message);
    return true;
  }

  std::vector<Shown> devices() {
    std::vector<Shown> out;
    GList *list = gst_device_provider_get_devices(provider_);
    for (GList *l = list; l != nullptr; l = l->next) {
      out.push_back(shown_of(GST_DEVICE(l->data)));
    }
    g_list_free_full(list, gst_object_unref);
    return out;
  }

  GstDeviceProvider *provider_ = nullptr;
  GstBus *bus_ = nullptr;
  ComPtr<FakeSessionManager> speakers_;
  std::shared_ptr<FakeSessionManagers> managers_;
};

TEST_F(ProviderTest, TwoProcessesAreTwoDevicesWithTheirNamesAndState) {
  const ChildCopy exe_a, exe_b;
  ChildProcess a, b;
  std::string why;
  ASSERT_TRUE(a.start(30000, why, exe_a.path())) << why;
  ASSERT_TRUE(b.start(30000, why, exe_b.path())) << why;
  speakers_->add_existing(L"a", a.pid(), AudioSessionStateActive)->set_display_name(L"Tone A");
  speakers_->add_existing(L"b1", b.pid(), AudioSessionStateInactive);
  speakers_->add_existing(L"b2", b.pid(), AudioSessionStateInactive);
  ASSERT_TRUE(gst_device_provider_start(provider_));
  std::vector<Shown> now = devices();
  ASSERT_EQ(now.size(), 2u);
  for (const Shown &s : now) {
    EXPECT_EQ(s.api, "wasapi");
    EXPECT_EQ(s.device_class, "Audio/Source/Application");
    if (s.pid == a.pid()) {
      EXPECT_EQ(s.name, "Tone A");
      EXPECT_EQ(s.app_name, "Tone A");
      EXPECT_EQ(s.process_name, exe_a.stem() + ".exe");
      EXPECT_TRUE(s.playing);
      EXPECT_EQ(s.streams, 1u);
    } else {
      EXPECT_EQ(s.pid, b.pid());
      EXPECT_EQ(s.name, exe_b.stem());  // no display name: the executable's, without .exe
      EXPECT_EQ(s.app_name, exe_b.stem());
      EXPECT_EQ(s.process_name, exe_b.stem() + ".exe");
      EXPECT_FALSE(s.playing);
      EXPECT_EQ(s.streams, 2u) << "two sessions of one process are one device";
    }
  }
  Posted posted;
  ASSERT_TRUE(next(posted));
  EXPECT_EQ(posted.type, GST_MESSAGE_DEVICE_ADDED);
  ASSERT_TRUE(next(posted));
  EXPECT_EQ(posted.type, GST_MESSAGE_DEVICE_ADDED);

  // Its caps are what wasapiprocsrc captures.
  GList *list = gst_device_provider_get_devices(provider_);
  ASSERT_NE(list, nullptr);
  GstCaps *caps = gst_device_get_caps(GST_DEVICE(list->data));
  GstElementFactory *factory = gst_element_factory_find("wasapiprocsrc");
  ASSERT_NE(factory, nullptr);
  GstCaps *template_caps = nullptr;
  for (const GList *t = gst_element_factory_get_static_pad_templates(factory); t != nullptr;
       t = t->next) {
    auto *pad_template = static_cast<GstStaticPadTemplate *>(t->data);
    if (pad_template->direction == GST_PAD_SRC) {
      template_caps = gst_static_pad_template_get_caps(pad_template);
    }
  }
  ASSERT_NE(template_caps, nullptr);
  EXPECT_TRUE(gst_caps_is_equal(caps, template_caps));
  gst_caps_unref(template_caps);
  gst_caps_unref(caps);
  gst_object_unref(factory);
  g_list_free_full(list, gst_object_unref);
  gst_device_provider_stop(provider_);
  EXPECT_EQ(speakers_->registered(), 0);
}

TEST_F(ProviderTest, DevicesFollowTheSessionsLive) {
  const ChildCopy exe_a, exe_b;
  ChildProcess a, b;
  std::string why;
  ASSERT_TRUE(a.start(30000, why, exe_a.path())) << why;
  ASSERT_TRUE(b.start(30000, why, exe_b.path())) << why;
  ComPtr<FakeSessionControl> a1 = speakers_->add_existing(L"a1", a.pid(), AudioSessionStateActive);
  ASSERT_TRUE(gst_device_provider_start(provider_));
  Posted posted;
  ASSERT_TRUE(next(posted));
  ASSERT_EQ(posted.type, GST_MESSAGE_DEVICE_ADDED);
  EXPECT_TRUE(posted.shown.playing);

  a1->set_state(AudioSessionStateInactive);
  ASSERT_TRUE(next(posted));
  EXPECT_EQ(posted.type, GST_MESSAGE_DEVICE_CHANGED);
  EXPECT_EQ(posted.shown.pid, a.pid());
  EXPECT_FALSE(posted.shown.playing);
  EXPECT_TRUE(posted.old_shown.playing);

  ComPtr<FakeSessionControl> b1 =
      speakers_->create_session(L"b1", b.pid(), AudioSessionStateActive);
  ASSERT_TRUE(next(posted));
  EXPECT_EQ(posted.type, GST_MESSAGE_DEVICE_ADDED);
  EXPECT_EQ(posted.shown.pid, b.pid());
  EXPECT_EQ(devices().size(), 2u);

  b1->disconnect();
  ASSERT_TRUE(next(posted));
  EXPECT_EQ(posted.type, GST_MESSAGE_DEVICE_REMOVED);
  EXPECT_EQ(posted.shown.pid, b.pid());

  a1->set_state(AudioSessionStateExpired);
  ASSERT_TRUE(next(posted));
  EXPECT_EQ(posted.type, GST_MESSAGE_DEVICE_REMOVED);
  EXPECT_EQ(posted.shown.pid, a.pid());
  EXPECT_TRUE(devices().empty());
  EXPECT_FALSE(next(posted, 0)) << "a message too many";
}

TEST_F(ProviderTest, ADeviceCreatesAWasapiprocsrcCapturingItsTree) {
  const ChildCopy exe;
  ChildProcess parent;
  std::string why;
  ASSERT_TRUE(parent.start(30000, why, exe.path(), exe.path())) << why;
  // The child's session: the device is the parent's (the same executable).
  uint32_t child = 0;
  for (int attempt = 0; attempt < 200 && child == 0; ++attempt) {
    std::vector<ProcessEntry> processes;
    ASSERT_FALSE(list_processes(processes));
    for (const ProcessEntry &p : processes) {
      // By name: wine may give a console program a conhost.exe child too.
      if (p.parent_pid == parent.pid() && p.pid != parent.pid() &&
          process_name_matches(p.exe, to_utf16(exe.stem()))) {
        child = p.pid;
      }
    }
    if (child == 0) {
      WaitForSingleObject(parent.handle(), 50);  // bounded: it starts its own child now
    }
  }
  ASSERT_NE(child, 0u);
  speakers_->add_existing(L"renderer", child, AudioSessionStateActive);
  GList *list = gst_device_provider_get_devices(provider_);  // a probe: not started
  ASSERT_EQ(g_list_length(list), 1u);
  GstDevice *device = GST_DEVICE(list->data);
  EXPECT_EQ(shown_of(device).pid, parent.pid());
  GstElement *element = gst_device_create_element(device, "captured");
  ASSERT_NE(element, nullptr);
  EXPECT_TRUE(GST_IS_WASAPI_PROC_SRC(element));
  gint pid = 0;
  gchar *name = nullptr;
  gint mode = 0;
  g_object_get(element, "pid", &pid, "process-name", &name, "mode", &mode, nullptr);
  EXPECT_EQ(static_cast<uint32_t>(pid), parent.pid());
  EXPECT_EQ(name, nullptr);
  GParamSpec *spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element), "mode");
  GEnumValue *value = g_enum_get_value(G_PARAM_SPEC_ENUM(spec)->enum_class, mode);
  ASSERT_NE(value, nullptr);
  EXPECT_STREQ(value->value_nick, "include-tree");
  g_free(name);
  // Another wasapiprocsrc, pointed at this application.
  GstElement *other = gst_element_factory_make("wasapiprocsrc", nullptr);
  g_object_set(other, "process-name", "something-else.exe", nullptr);
  EXPECT_TRUE(gst_device_reconfigure_element(device, other));
  g_object_get(other, "pid", &pid, "process-name", &name, nullptr);
  EXPECT_EQ(static_cast<uint32_t>(pid), parent.pid());
  EXPECT_EQ(name, nullptr);
  g_free(name);
  GstElement *not_ours = gst_element_factory_make("fakesrc", nullptr);
  if (not_ours != nullptr) {
    EXPECT_FALSE(gst_device_reconfigure_element(device, not_ours));
    gst_object_unref(not_ours);
  }
  gst_object_unref(other);
  gst_object_unref(element);
  g_list_free_full(list, gst_object_unref);
  EXPECT_EQ(speakers_->registered(), 0) << "the probe left a registration behind";
}

TEST_F(ProviderTest, TwoHundredStartsAndStopsGiveEveryReferenceBack) {
  const ChildCopy exe;
  ChildProcess a;
  std::string why;
  ASSERT_TRUE(a.start(60000, why, exe.path())) << why;
  ComPtr<FakeSessionControl> session =
      speakers_->add_existing(L"a", a.pid(), AudioSessionStateActive);
  const ULONG manager_refs = testing::references(speakers_.Get());
  const ULONG session_refs = testing::references(session.Get());
  for (int round = 0; round < 200; ++round) {
    ASSERT_TRUE(gst_device_provider_start(provider_)) << "round " << round;
    ASSERT_EQ(devices().size(), 1u) << "round " << round;
    gst_device_provider_stop(provider_);  // (which flushes the bus)
  }
  EXPECT_EQ(testing::references(speakers_.Get()), manager_refs);
  EXPECT_EQ(testing::references(session.Get()), session_refs);
  EXPECT_EQ(speakers_->registered(), 0);
  EXPECT_EQ(session->registered(), 0);
}

// What the provider's debug category said at WARNING.
std::mutex g_warnings_mutex;
std::vector<std::string> g_warnings;

void record_warning(GstDebugCategory *category, GstDebugLevel level, const gchar *, const gchar *,
                    gint, GObject *, GstDebugMessage *message, gpointer) {
  if (level == GST_LEVEL_WARNING &&
      std::string(gst_debug_category_get_name(category)) == "wasapiprocdeviceprovider") {
    std::lock_guard<std::mutex> lock(g_warnings_mutex);
    g_warnings.emplace_back(gst_debug_message_get(message));
  }
}

TEST(ProviderUnderWine, WinesSessionManagerListsNothingAndTheProviderSaysWhy) {
  // wine 8's IAudioSessionManager2 answers RegisterSessionNotification with E_NOTIMPL: the
  // provider cannot watch the sessions, start() fails, and the warning names the call.
  if (!testing::running_under_wine()) {
    GTEST_SKIP() << "wine's session manager only";
  }
  uint32_t mix_rate = 0;
  // linux_side.py gives wine a PulseAudio server, so it has a render endpoint; without one
  // the session manager would not be asked at all.
  ASSERT_FALSE(run_on_mta_thread([&mix_rate] { return default_render_mix_rate(mix_rate); }))
      << "no render endpoint: run under tests/wasapi/linux_side.py";
  gst_debug_set_threshold_for_name("wasapiprocdeviceprovider", GST_LEVEL_WARNING);
  gst_debug_add_log_function(record_warning, nullptr, nullptr);
  GstDeviceProvider *provider = GST_DEVICE_PROVIDER(
      gst_object_ref_sink(g_object_new(GST_TYPE_WASAPI_PROC_DEVICE_PROVIDER, nullptr)));
  const gboolean started = gst_device_provider_start(provider);
  GList *probed = gst_device_provider_get_devices(provider);
  gst_debug_remove_log_function(record_warning);
  EXPECT_FALSE(started) << "wine reports audio sessions now: list them under wine for real";
  EXPECT_EQ(probed, nullptr);
  g_list_free_full(probed, gst_object_unref);
  gst_object_unref(provider);
  std::lock_guard<std::mutex> lock(g_warnings_mutex);
  std::string all;
  for (const std::string &warning : g_warnings) {
    all += "\n  " + warning;
  }
  ASSERT_EQ(g_warnings.size(), 2u) << "start() and probe() warn once each:" << all;
  for (const std::string &warning : g_warnings) {
    EXPECT_NE(warning.find("IAudioSessionManager2::RegisterSessionNotification failed"),
              std::string::npos)
        << warning;
    EXPECT_NE(warning.find("E_NOTIMPL"), std::string::npos) << warning;
  }
  EXPECT_NE(g_warnings[0].find("cannot watch the applications"), std::string::npos);
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  // Linked in, not loaded: registered here as the plugin registers them.
  gst_element_register(nullptr, "wasapiprocsrc", GST_RANK_NONE, GST_TYPE_WASAPI_PROC_SRC);
  gst_device_provider_register(nullptr, "wasapiprocdeviceprovider", GST_RANK_MARGINAL,
                               GST_TYPE_WASAPI_PROC_DEVICE_PROVIDER);
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  gst_deinit();
  return result;
}
