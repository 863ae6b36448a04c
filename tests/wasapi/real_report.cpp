// SPDX-License-Identifier: LGPL-2.1-or-later
#include "real_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>

namespace procaudio {
namespace wasapi {
namespace testing {

std::string json_string(const std::string &text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

JsonObject &JsonObject::raw(const std::string &key, std::string json) {
  for (auto &field : fields_) {
    if (field.first == key) {
      field.second = std::move(json);
      return *this;
    }
  }
  fields_.emplace_back(key, std::move(json));
  return *this;
}

JsonObject &JsonObject::set(const std::string &key, const std::string &value) {
  return raw(key, json_string(value));
}
JsonObject &JsonObject::set(const std::string &key, const char *value) {
  return raw(key, value != nullptr ? json_string(value) : "null");
}
JsonObject &JsonObject::set(const std::string &key, double value) {
  if (!std::isfinite(value)) {
    return raw(key, "null");
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return raw(key, text);
}
JsonObject &JsonObject::set(const std::string &key, int64_t value) {
  return raw(key, std::to_string(value));
}
JsonObject &JsonObject::set(const std::string &key, uint64_t value) {
  return raw(key, std::to_string(value));
}
JsonObject &JsonObject::set(const std::string &key, bool value) {
  return raw(key, value ? "true" : "false");
}
JsonObject &JsonObject::set(const std::string &key, const JsonObject &value) {
  return raw(key, value.dump());
}
JsonObject &JsonObject::set(const std::string &key, const std::vector<JsonObject> &values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    out += (i ? ", " : "") + values[i].dump();
  }
  return raw(key, out + "]");
}
JsonObject &JsonObject::set(const std::string &key, const std::vector<std::string> &values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    out += (i ? ", " : "") + json_string(values[i]);
  }
  return raw(key, out + "]");
}

std::string JsonObject::dump(int indent) const {
  const std::string pad = indent > 0 ? "\n" + std::string(static_cast<size_t>(indent), ' ') : "";
  const std::string end = indent > 0 ? "\n" : "";
  std::string out = "{";
  for (size_t i = 0; i < fields_.size(); ++i) {
    out += (i ? "," : "") + (indent > 0 ? pad : std::string(i ? " " : "")) +
           json_string(fields_[i].first) + ": " + fields_[i].second;
  }
  return out + end + "}";
}

RealReport &RealReport::get() {
  static RealReport report;
  return report;
}

void RealReport::add_scenario(JsonObject scenario) {
  std::lock_guard<std::mutex> lock(mutex_);
  scenarios_.push_back(std::move(scenario));
}

void RealReport::add_format(JsonObject format) {
  std::lock_guard<std::mutex> lock(mutex_);
  formats_.push_back(std::move(format));
}

void RealReport::note_hresults(const std::string &text) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t at = text.find("0x"); at != std::string::npos; at = text.find("0x", at + 2)) {
    if (at + 10 > text.size()) {
      break;
    }
    const std::string hex = text.substr(at, 10);
    if (!std::all_of(hex.begin() + 2, hex.end(), [](char c) { return std::isxdigit(c) != 0; })) {
      continue;
    }
    // "0x80070002 (HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND): text)": the name ends at the
    // first ':' or at the parenthesis that closes the one it starts in.
    std::string name;
    if (text.compare(at + 10, 2, " (") == 0) {
      int depth = 0;
      size_t stop = at + 12;
      for (; stop < text.size(); ++stop) {
        const char c = text[stop];
        if (c == '(') {
          ++depth;
        } else if ((c == ')' && depth-- == 0) || (c == ':' && depth == 0)) {
          break;
        }
      }
      name = text.substr(at + 12, stop - at - 12);
    }
    hresults_.insert(name.empty() ? hex : hex + " " + name);
  }
}

void RealReport::note_line(const std::string &line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (std::find(lines_.begin(), lines_.end(), line) == lines_.end()) {
    lines_.push_back(line);
  }
}

bool RealReport::write(const std::string &path, std::string &error) {
  std::lock_guard<std::mutex> lock(mutex_);
  JsonObject root = header_;
  root.set("formats", formats_);
  root.set("scenarios", scenarios_);
  root.set("hresults", std::vector<std::string>(hresults_.begin(), hresults_.end()));
  root.set("log", lines_);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << root.dump(2) << "\n";
  out.close();
  if (!out) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(values.size() - 1, lo + 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
