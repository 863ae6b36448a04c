// SPDX-License-Identifier: LGPL-2.1-or-later
#include "win_string.h"

#include <windows.h>

#include <climits>

namespace procaudio {
namespace wasapi {

std::string to_utf8(const wchar_t *text, size_t length) {
  if (text == nullptr || length == 0 || length > static_cast<size_t>(INT_MAX)) {
    return {};
  }
  const int in = static_cast<int>(length);
  const int needed = WideCharToMultiByte(CP_UTF8, 0, text, in, nullptr, 0, nullptr, nullptr);
  if (needed <= 0) {
    return {};
  }
  std::string out(static_cast<size_t>(needed), '\0');
  WideCharToMultiByte(CP_UTF8, 0, text, in, &out[0], needed, nullptr, nullptr);
  return out;
}

std::string to_utf8(const std::wstring &text) {
  return to_utf8(text.data(), text.size());
}

std::wstring to_utf16(const std::string &text) {
  if (text.empty() || text.size() > static_cast<size_t>(INT_MAX)) {
    return {};
  }
  const int in = static_cast<int>(text.size());
  const int needed = MultiByteToWideChar(CP_UTF8, 0, text.data(), in, nullptr, 0);
  if (needed <= 0) {
    return {};
  }
  std::wstring out(static_cast<size_t>(needed), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, text.data(), in, &out[0], needed);
  return out;
}

}  // namespace wasapi
}  // namespace procaudio
