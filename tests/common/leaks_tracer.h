// SPDX-License-Identifier: LGPL-2.1-or-later
// The leaks tracer (GST_TRACERS=leaks, as meson runs the suites that use it), read by tests:
// what was made since tracking began and is still alive.
#pragma once

#include <gst/gst.h>

#include <map>
#include <string>
#include <utility>

namespace procaudio {
namespace testing {

// The active leaks tracer (a reference), or null when GST_TRACERS has none.
inline GstTracer *leaks_tracer() {
  GList *tracers = gst_tracing_get_active_tracers();
  GstTracer *found = nullptr;
  for (GList *l = tracers; l != nullptr; l = l->next) {
    if (found == nullptr && g_str_has_prefix(GST_OBJECT_NAME(l->data), "leaks")) {
      found = GST_TRACER(gst_object_ref(l->data));
    }
  }
  g_list_free_full(tracers, gst_object_unref);
  return found;
}

// Objects the tracer saw created since the last checkpoint ("activity-start-tracking") and
// not destroyed since, by type. (1.22's "get-live-objects" hands out unowned references, so
// the created and removed lists it is.)
inline std::map<std::string, int> created_and_alive(GstTracer *leaks) {
  GstStructure *checkpoint = nullptr;
  g_signal_emit_by_name(leaks, "activity-get-checkpoint", &checkpoint);
  std::map<std::pair<std::string, std::string>, int> balance;  // (type, address) -> count
  for (const auto &[field, sign] :
       {std::make_pair("objects-created-list", 1), std::make_pair("objects-removed-list", -1)}) {
    const GValue *list = gst_structure_get_value(checkpoint, field);
    for (guint i = 0; i < gst_value_list_get_size(list); ++i) {
      const GstStructure *o = gst_value_get_structure(gst_value_list_get_value(list, i));
      balance[{gst_structure_get_string(o, "type-name"), gst_structure_get_string(o, "address")}] +=
          sign;
    }
  }
  gst_structure_free(checkpoint);
  std::map<std::string, int> alive;
  for (const auto &[key, n] : balance) {
    if (n > 0) {  // negative: existed before tracking began and went away, fine
      alive[key.first] += n;
    }
  }
  return alive;
}

}  // namespace testing
}  // namespace procaudio
