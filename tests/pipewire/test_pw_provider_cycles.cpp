// SPDX-License-Identifier: LGPL-2.1-or-later
// pipewireprocdeviceprovider started and stopped 200 times leaks no GStreamer object (leaks
// tracer) and leaves no PipeWire client or thread behind; AppList, the grouping under the
// provider, on its own. Fixture: provider_watch.h.
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <pipewire/pipewire.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "common/leaks_tracer.h"
#include "core/monotonic_clock.h"
#include "pipewire/pw_app_list.h"
#include "provider_watch.h"

namespace procaudio {
namespace pwtest {
namespace {

using testing::created_and_alive;
using testing::leaks_tracer;

// The PipeWire Clients on the session whose kernel pid is this process's, counted through a
// connection of the test's own (which is one of them).
int clients_of_this_process() {
  pw_init(nullptr, nullptr);
  struct Count {
    pw_main_loop *loop;
    int clients = 0;
    int seq = 0;
  } count{pw_main_loop_new(nullptr)};
  pw_context *context = pw_context_new(pw_main_loop_get_loop(count.loop), nullptr, 0);
  pw_core *core = pw_context_connect(context, nullptr, 0);
  if (core == nullptr) {
    pw_context_destroy(context);
    pw_main_loop_destroy(count.loop);
    return -1;
  }
  pw_registry *registry = pw_core_get_registry(core, PW_VERSION_REGISTRY, 0);
  spa_hook registry_listener{}, core_listener{};
  pw_registry_events registry_events{};
  registry_events.version = PW_VERSION_REGISTRY_EVENTS;
  registry_events.global = [](void *data, uint32_t, uint32_t, const char *type, uint32_t,
                              const spa_dict *props) {
    const char *pid = props ? spa_dict_lookup(props, PW_KEY_SEC_PID) : nullptr;
    if (std::strcmp(type, PW_TYPE_INTERFACE_Client) == 0 && pid != nullptr &&
        std::atoi(pid) == getpid()) {
      static_cast<Count *>(data)->clients++;
    }
  };
  pw_registry_add_listener(registry, &registry_listener, &registry_events, &count);
  pw_core_events core_events{};
  core_events.version = PW_VERSION_CORE_EVENTS;
  core_events.done = [](void *data, uint32_t id, int seq) {
    auto *c = static_cast<Count *>(data);
    if (id == PW_ID_CORE && seq == c->seq) {
      pw_main_loop_quit(c->loop);
    }
  };
  pw_core_add_listener(core, &core_listener, &core_events, &count);
  count.seq = pw_core_sync(core, PW_ID_CORE, 0);
  pw_main_loop_run(count.loop);
  spa_hook_remove(&registry_listener);
  spa_hook_remove(&core_listener);
  pw_proxy_destroy(reinterpret_cast<pw_proxy *>(registry));
  pw_core_disconnect(core);
  pw_context_destroy(context);
  pw_main_loop_destroy(count.loop);
  return count.clients;
}

TEST_F(ProviderTest, TwoHundredStartsAndStopsLeaveNothingBehind) {
  GstTracer *leaks = leaks_tracer();
  ASSERT_NE(leaks, nullptr) << "run with GST_TRACERS=leaks (meson test does)";
  play({"--freq", "440"});  // a device made and dropped every round
  Watch watch;
  ASSERT_TRUE(watch.start());  // first-use allocations (caps caches, types) are not leaks
  ASSERT_TRUE(watch.wait([](const std::map<guint, Shown> &d) { return d.size() == 1; }, 5000));
  watch.stop();
  g_signal_emit_by_name(leaks, "activity-start-tracking");
  const uint64_t began = monotonic_now_ns();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(watch.start()) << "round " << i;
    GList *devices = gst_device_provider_get_devices(watch.provider());
    ASSERT_EQ(g_list_length(devices), 1u) << "round " << i;
    g_list_free_full(devices, gst_object_unref);
    watch.stop();
  }
  const double seconds = (monotonic_now_ns() - began) / 1e9;
  std::printf("  200 starts and stops in %.2f s\n", seconds);
  std::string grew;
  for (const auto &[type, n] : created_and_alive(leaks)) {
    // The Watch keeps the device of the last message it saw, whatever the round count.
    if (n > 1) {
      grew += type + " x" + std::to_string(n) + " ";
    }
  }
  g_signal_emit_by_name(leaks, "activity-stop-tracking");
  gst_object_unref(leaks);
  EXPECT_TRUE(grew.empty()) << "created during 200 rounds and still alive: " << grew;
  // The last stop tore the shared connection down: no client of ours but the counter's, and
  // no thread loop left.
  EXPECT_EQ(clients_of_this_process(), 1);
  EXPECT_EQ(settled_thread_count("procaudio-pw", 0), 0);
}

// ------------------------------------------------------------------------------------------
// AppList alone, fed what the registry would say, with a process tree of its own.

TEST(AppList, GroupsStreamsUnderTheirRootAndTellsWhatChanged) {
  using pipewire::AppList;
  using pipewire::AppRoot;
  using pipewire::AppStream;
  using Kind = AppList::Change::Kind;
  // pid 20 and 21 are children of 10 ("player"); 30 is "other"; 99 is the provider.
  AppList list(99, [](uint32_t pid) -> AppRoot {
    if (pid == 10 || pid == 20 || pid == 21) {
      return {10, "player", ""};
    }
    if (pid == 30) {
      return {30, "other", "org.example.Other"};
    }
    return {};  // exited
  });
  AppList::Change c = list.update({1, 20, false, "Child Name", ""});
  EXPECT_EQ(c.kind, Kind::kAdded);
  EXPECT_EQ(c.app.pid, 10u);
  EXPECT_EQ(c.app.display_name, "Child Name");
  EXPECT_FALSE(c.app.playing);
  c = list.update({2, 10, true, "Player", ""});  // the root's own stream names it
  EXPECT_EQ(c.kind, Kind::kChanged);
  EXPECT_EQ(c.app.display_name, "Player");
  EXPECT_EQ(c.app.streams, 2u);
  EXPECT_TRUE(c.app.playing);
  EXPECT_EQ(list.update({2, 10, true, "Player", ""}).kind, Kind::kNone);
  c = list.update({3, 30, false, "", ""});
  EXPECT_EQ(c.kind, Kind::kAdded);
  EXPECT_EQ(c.app.display_name, "other");  // no application.name: the executable's
  EXPECT_EQ(c.app.app_id, "org.example.Other");
  EXPECT_EQ(list.update({4, 99, true, "Us", ""}).kind, Kind::kNone);  // the provider's own
  EXPECT_EQ(list.update({5, 0, true, "Nobody", ""}).kind, Kind::kNone);
  EXPECT_EQ(list.update({6, 77, true, "Gone", ""}).kind, Kind::kNone);
  EXPECT_EQ(list.applications().size(), 2u);
  c = list.remove(2);
  EXPECT_EQ(c.kind, Kind::kChanged);
  EXPECT_FALSE(c.app.playing);
  EXPECT_EQ(c.app.display_name, "Child Name");
  c = list.remove(1);
  EXPECT_EQ(c.kind, Kind::kRemoved);
  EXPECT_EQ(c.app.pid, 10u);
  EXPECT_EQ(list.remove(1).kind, Kind::kNone);
  EXPECT_EQ(list.applications().size(), 1u);
}

}  // namespace
}  // namespace pwtest
}  // namespace procaudio
