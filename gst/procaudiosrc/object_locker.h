// SPDX-License-Identifier: LGPL-2.1-or-later
// RAII for GST_OBJECT_LOCK, as libcamerasrc does for its GLib mutexes.
#pragma once

#include <gst/gst.h>

namespace procaudio {

class ObjectLocker {
 public:
  explicit ObjectLocker(gpointer object) : object_(GST_OBJECT(object)) { GST_OBJECT_LOCK(object_); }
  ~ObjectLocker() { GST_OBJECT_UNLOCK(object_); }
  ObjectLocker(const ObjectLocker &) = delete;
  ObjectLocker &operator=(const ObjectLocker &) = delete;

 private:
  GstObject *object_;
};

}  // namespace procaudio
