// SPDX-License-Identifier: LGPL-2.1-or-later
// UTF-8 <-> UTF-16 for the Win32 "W" APIs: the engine and GStreamer speak UTF-8.
#pragma once

#include <string>

namespace procaudio {
namespace wasapi {

// Invalid sequences become U+FFFD; an empty input gives an empty output.
std::string to_utf8(const wchar_t *text, size_t length);
std::string to_utf8(const std::wstring &text);
std::wstring to_utf16(const std::string &text);

}  // namespace wasapi
}  // namespace procaudio
