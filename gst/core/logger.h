// SPDX-License-Identifier: LGPL-2.1-or-later
// A logging seam: backends and the engine log through it, the element routes it to its
// GStreamer debug category (GST_DEBUG=pipewireprocsrc:6 shows the backend's lines too).
#pragma once

#include <cstdarg>
#include <cstdio>
#include <functional>

namespace procaudio {

enum class LogLevel { kError, kWarning, kInfo, kDebug, kLog, kTrace };

class Logger {
 public:
  // `wants` is asked first, so that a disabled level costs no formatting on a capture thread.
  using Wants = std::function<bool(LogLevel)>;
  using Sink = std::function<void(LogLevel, const char *file, int line, const char *text)>;

  Logger() = default;
  Logger(Wants wants, Sink sink) : wants_(std::move(wants)), sink_(std::move(sink)) {}

  bool wants(LogLevel level) const { return sink_ && (!wants_ || wants_(level)); }

#if defined(__GNUC__)
  __attribute__((format(printf, 5, 6)))
#endif
  void
  log(LogLevel level, const char *file, int line, const char *format, ...) const {
    if (!wants(level)) {
      return;
    }
    char text[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    sink_(level, file, line, text);
  }

 private:
  Wants wants_;
  Sink sink_;
};

}  // namespace procaudio

#define PROCAUDIO_LOG(logger, level, ...) \
  (logger).log(procaudio::LogLevel::level, __FILE__, __LINE__, __VA_ARGS__)
#define PROCAUDIO_ERROR(logger, ...) PROCAUDIO_LOG(logger, kError, __VA_ARGS__)
#define PROCAUDIO_WARNING(logger, ...) PROCAUDIO_LOG(logger, kWarning, __VA_ARGS__)
#define PROCAUDIO_INFO(logger, ...) PROCAUDIO_LOG(logger, kInfo, __VA_ARGS__)
#define PROCAUDIO_DEBUG(logger, ...) PROCAUDIO_LOG(logger, kDebug, __VA_ARGS__)
#define PROCAUDIO_TRACE(logger, ...) PROCAUDIO_LOG(logger, kTrace, __VA_ARGS__)
