// SPDX-License-Identifier: LGPL-2.1-or-later
// Whose stream is it, when the process said so itself: PulseAudio clients (through
// pipewire-pulse) report their own pid, and a client in a pid namespace (Flatpak and other
// sandboxes, `unshare --pid`) reports the pid it has there, which on the host is another
// process or none. This maps such a reported pid to the host pid, from /proc/PID/status
// (`NSpid:`, the process's pid in each namespace it is in) and the reported executable, and
// refuses to guess. No GStreamer, no PipeWire.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace procaudio {
namespace pipewire {

// The pid of `pid` in each pid namespace it is in, this /proc's first, its own (innermost)
// last; empty if unknown (gone, or a kernel before 4.1).
std::vector<uint32_t> ns_pids(uint32_t pid);

// The host processes that could have reported `reported` running `binary`: those whose own
// (innermost) pid is `reported` and whose comm or executable's base name is `binary`. None
// without a binary: a number alone names no process safely.
std::vector<uint32_t> reporting_candidates(uint32_t reported, const std::string &binary);

// The host pid of the one candidate; 0 when there is none or more than one (`candidates`, if
// given, receives them all, for the log).
uint32_t map_reported_pid(uint32_t reported, const std::string &binary,
                          std::vector<uint32_t> *candidates = nullptr);

// This machine's id (/etc/machine-id, as PulseAudio clients report theirs); "" if unknown.
const std::string &machine_id();

// The Flatpak application id of `pid` ("org.example.App": [Application] name= in the
// /.flatpak-info Flatpak puts in its sandboxes); "" when it runs in none, or its root cannot
// be read (another user's process).
std::string flatpak_app_id(uint32_t pid);

}  // namespace pipewire
// This machine's id (/etc/machine-id, as PulseAudio clients report theirs); "" if unknown.
const std::string &machine_id();

}  // namespace procaudio
