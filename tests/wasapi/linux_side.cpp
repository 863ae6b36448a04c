// SPDX-License-Identifier: LGPL-2.1-or-later
#include "linux_side.h"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>

namespace procaudio {
namespace wasapi {
namespace testing {

namespace {

// "a=1 b=x" -> {a: 1, b: x}
std::map<std::string, std::string> fields_of(const std::string &text) {
  std::map<std::string, std::string> fields;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    const size_t eq = word.find('=');
    if (eq != std::string::npos) {
      fields[word.substr(0, eq)] = word.substr(eq + 1);
    }
  }
  return fields;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

bool LinuxSide::available() {
  const char *env = std::getenv("PROCAUDIO_LINUX_SIDE");
  return env != nullptr && std::string(env) == "1";
}

const char *LinuxSide::how_to_run() {
  return "these tests need the Linux side: run them through tests/wasapi/linux_side.py "
         "(meson test does), which starts a private PipeWire session for wine to play into";
}

bool LinuxSide::request(const std::string &line, std::string &answer, std::string &error) {
  // One request at a time: the answers come back in order on one stdin.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (!available()) {
    error = how_to_run();
    return false;
  }
  std::printf("@@linux %s\n", line.c_str());
  std::fflush(stdout);
  std::string reply;
  if (!std::getline(std::cin, reply)) {
    error = "the Linux side did not answer '" + line + "' (stdin closed)";
    return false;
  }
  while (!reply.empty() && (reply.back() == '\r' || reply.back() == '\n')) {
    reply.pop_back();
  }
  if (reply.rfind("@@ok", 0) == 0) {
    answer = reply.size() > 5 ? reply.substr(5) : "";
    return true;
  }
  error = "the Linux side refused '" + line + "': " + reply;
  return false;
}

uint32_t LinuxSide::play(double freq, double seconds, double dbfs, std::string &error) {
  std::string answer;
  if (!request("play " + number(freq) + " " + number(seconds) + " " + number(dbfs), answer,
               error)) {
    return 0;
  }
  return static_cast<uint32_t>(std::strtoul(fields_of(answer)["pid"].c_str(), nullptr, 10));
}

bool LinuxSide::stop(uint32_t pid, std::string &error) {
  std::string answer;
  return request("stop " + std::to_string(pid), answer, error);
}

bool LinuxSide::kill_pulse(std::string &error) {
  std::string answer;
  return request("kill-pulse", answer, error);
}

bool LinuxSide::restart_pulse(std::string &error) {
  std::string answer;
  return request("restart-pulse", answer, error);
}

uint32_t LinuxSide::sink_rate(std::string &error) {
  std::string answer;
  if (!request("sink-rate", answer, error)) {
    return 0;
  }
  return static_cast<uint32_t>(std::strtoul(fields_of(answer)["rate"].c_str(), nullptr, 10));
}

bool LinuxSide::capture(const std::string &name, double seconds, double freq, double other,
                        Capture &result, std::string &error) {
  std::string answer;
  if (!request("capture " + name + " " + number(seconds) + " " + number(freq) + " " + number(other),
               answer, error)) {
    return false;
  }
  auto f = fields_of(answer);
  result.level_dbfs = std::strtod(f["level"].c_str(), nullptr);
  result.other_dbfs = std::strtod(f["other"].c_str(), nullptr);
  result.peak_dbfs = std::strtod(f["peak"].c_str(), nullptr);
  result.audible = std::strtod(f["audible"].c_str(), nullptr);
  result.dominant_hz = std::strtod(f["dominant"].c_str(), nullptr);
  result.frames = std::strtoull(f["frames"].c_str(), nullptr, 10);
  return true;
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
