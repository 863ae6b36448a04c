// SPDX-License-Identifier: LGPL-2.1-or-later
// What the PipeWire provider needs of the platform-free AppList (core/app_list.h): the root a
// stream's process plays for, found in /proc.
#pragma once

#include <cstdint>

#include "core/app_list.h"

namespace procaudio {
namespace pipewire {

using procaudio::Application;
using procaudio::AppList;
using procaudio::AppRoot;
using procaudio::AppStream;
using procaudio::RootFinder;

// The real one, from /proc: the oldest of the process and its ancestors with the process's
// executable name (its comm for a Wine program, whose executable is the loader and whose comm
// is the .exe), named as it was started (its comm, unless the kernel truncated that), and the
// Flatpak id of that root.
AppRoot find_root(uint32_t pid);

}  // namespace pipewire
}  // namespace procaudio
