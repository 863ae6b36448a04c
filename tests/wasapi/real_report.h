// SPDX-License-Identifier: LGPL-2.1-or-later
// The wasapi-real suite's JSON report: the machine, the mode the suite ran in, what Windows
// accepted (formats, Initialize flags), every HRESULT the element or the backend logged, and
// each scenario's measurements. Written once, when the suite ends.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace procaudio {
namespace wasapi {
namespace testing {

// A JSON object built field by field, in order.
class JsonObject {
 public:
  JsonObject &set(const std::string &key, const std::string &value);
  JsonObject &set(const std::string &key, const char *value);
  JsonObject &set(const std::string &key, double value);
  JsonObject &set(const std::string &key, int64_t value);
  JsonObject &set(const std::string &key, uint64_t value);
  JsonObject &set(const std::string &key, bool value);
  JsonObject &set(const std::string &key, const JsonObject &value);
  JsonObject &set(const std::string &key, const std::vector<JsonObject> &values);
  JsonObject &set(const std::string &key, const std::vector<std::string> &values);
  std::string dump(int indent = 0) const;

 private:
  JsonObject &raw(const std::string &key, std::string json);
  std::vector<std::pair<std::string, std::string>> fields_;  // key, rendered value
};

std::string json_string(const std::string &text);

class RealReport {
 public:
  static RealReport &get();

  JsonObject &header() { return header_; }
  void add_scenario(JsonObject scenario);
  void add_format(JsonObject format);
  // Every "0x........ (NAME...)" in `text` is remembered, once.
  void note_hresults(const std::string &text);
  // Log lines worth keeping (which Initialize variant was accepted, ...).
  void note_line(const std::string &line);

  // Writes the report to `path`; false with `error`.
  bool write(const std::string &path, std::string &error);

 private:
  std::mutex mutex_;
  JsonObject header_;
  std::vector<JsonObject> scenarios_;
  std::vector<JsonObject> formats_;
  std::set<std::string> hresults_;
  std::vector<std::string> lines_;
};

// p-th percentile (0..100) of `values` (sorted copy), 0 for none.
double percentile(std::vector<double> values, double p);

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
