// End-to-end tests of PipeWireBackend against a private, headless PipeWire + WirePlumber
// (+ pipewire-pulse) that each test starts with scripts/pipewire-session.sh and stops again.
// Real processes (tone_player, paplay) play known tones; a recording CaptureSink keeps what
// the backend delivers, and the tests assert what a user would hear: which frequencies are in
// the capture and at what level (Goertzel), the packets' timestamps, and the callbacks.
// No GStreamer. Every wait is on a condition with a bounded timeout.
//
// Environment: PROCAUDIO_TEST_LOG=N prints the backend's log up to level N (0 error .. 5
// trace); PROCAUDIO_TEST_DUMP_PACKETS=1 prints every packet's timing;
// PROCAUDIO_PW_LONG_SECONDS sets LongCaptureStaysContinuous's duration (default 60).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/capture_backend.h"
#include "core/monotonic_clock.h"
#include "pipewire/pipewire_backend.h"
#include "pipewire/proc_tree.h"

#ifndef PROCAUDIO_SOURCE_ROOT
#error "PROCAUDIO_SOURCE_ROOT must name the source tree (for scripts/pipewire-session.sh)"
#endif
#ifndef TONE_PLAYER_PATH
#error "TONE_PLAYER_PATH must name the tone_player binary"
#endif

namespace {

using procaudio::CaptureConfig;
using procaudio::CaptureError;
using procaudio::ErrorKind;
using procaudio::monotonic_now_ns;
using procaudio::Packet;
using procaudio::PipeWireBackend;
using procaudio::SampleFormat;
using procaudio::TargetMode;
using procaudio::TargetSpec;

constexpr double kPlayedAmplitude = 0.5;  // tone_player's default: -6.02 dBFS
constexpr double kAbsentDb = -80.0;       // "not there"
constexpr double kLevelToleranceDb = 10.0;

double db(double amplitude) {
  return 20.0 * std::log10(std::max(amplitude, 1e-12));
}

std::string shell_quote(const std::string &s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

// Waits up to `timeout_ms` for `fd` to become readable.
bool wait_readable(int fd, int timeout_ms) {
  struct pollfd pfd = {fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(&pfd, 1, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

int pidfd_open(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0u));
}

// Ends a process this test started and reaps it: SIGTERM, then SIGKILL if it lingers.
void terminate_and_reap(pid_t pid) {
  if (pid <= 0) {
    return;
  }
  const int fd = pidfd_open(pid);
  kill(pid, SIGTERM);
  if (fd < 0 || !wait_readable(fd, 3000)) {
    kill(pid, SIGKILL);
  }
  if (fd >= 0) {
    close(fd);
  }
  waitpid(pid, nullptr, 0);
}

// ------------------------------------------------------------------------------------------
// A private PipeWire session for one test.

class Session {
 public:
  // `dir`: the session's directory (a new one when empty); the same directory again gives
  // the same socket path.
  bool start(bool pulse, std::string *why, const std::string &dir = "") {
    const std::string script = std::string(PROCAUDIO_SOURCE_ROOT) + "/scripts/pipewire-session.sh";
    const std::string cmd = shell_quote(script) + " start" + (pulse ? " --pulse" : "") +
                            (dir.empty() ? "" : " --dir " + shell_quote(dir)) + " 2>&1";
    FILE *out = popen(cmd.c_str(), "r");
    if (out == nullptr) {
      *why = "popen failed";
      return false;
    }
    std::string text;
    char line[4096];
    while (std::fgets(line, sizeof line, out) != nullptr) {
      text += line;
    }
    const int rc = pclose(out);
    std::istringstream lines(text);
    std::string l;
    std::vector<std::string> unset_names;
    while (std::getline(lines, l)) {
      // unset NAME...  (variables that would send a client to another server)
      if (l.rfind("unset ", 0) == 0) {
        std::istringstream names(l.substr(6));
        for (std::string name; names >> name;) {
          unset_names.push_back(name);
        }
        continue;
      }
      // export NAME='value'
      if (l.rfind("export ", 0) != 0) {
        continue;
      }
      const auto eq = l.find('=');
      if (eq == std::string::npos) {
        continue;
      }
      const std::string name = l.substr(7, eq - 7);
      std::string value = l.substr(eq + 1);
      if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
        value = value.substr(1, value.size() - 2);
      }
      env_[name] = value;
    }
    if (rc != 0 || env_.count("PROCAUDIO_PW_DIR") == 0) {
      *why = "scripts/pipewire-session.sh start failed (" + std::to_string(rc) + "):\n" + text;
      return false;
    }
    dir_ = env_["PROCAUDIO_PW_DIR"];
    for (const auto &kv : env_) {
      unset_names.push_back(kv.first);
    }
    for (const std::string &name : unset_names) {
      const char *old = std::getenv(name.c_str());
      saved_[name] = old ? std::make_pair(true, std::string(old)) : std::make_pair(false, "");
      unsetenv(name.c_str());
    }
    for (const auto &kv : env_) {
      setenv(kv.first.c_str(), kv.second.c_str(), 1);
    }
    return true;
  }

  void stop() {
    if (dir_.empty()) {
      return;
    }
    const std::string script = std::string(PROCAUDIO_SOURCE_ROOT) + "/scripts/pipewire-session.sh";
    const std::string cmd = shell_quote(script) + " stop --dir " + shell_quote(dir_);
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "scripts/pipewire-session.sh stop failed";
    }
    for (const auto &kv : saved_) {
      if (kv.second.first) {
        setenv(kv.first.c_str(), kv.second.second.c_str(), 1);
      } else {
        unsetenv(kv.first.c_str());
      }
    }
    dir_.clear();
  }

  pid_t daemon_pid(const std::string &name) const {
    std::ifstream in(dir_ + "/pids/" + name + ".pid");
    pid_t pid = 0;
    in >> pid;
    return pid;
  }

  const std::string &dir() const { return dir_; }

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
  std::map<std::string, std::pair<bool, std::string>> saved_;
};

// This process's threads named `name` (the backend's PipeWire thread loop is "procaudio-pw").
int count_threads(const std::string &name) {
  DIR *dir = opendir("/proc/self/task");
  if (dir == nullptr) {
    return -1;
  }
  int count = 0;
  while (const dirent *entry = readdir(dir)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    if (procaudio::proc::comm(static_cast<uint32_t>(std::atoi(entry->d_name))) == name) {
      count++;
    }
  }
  closedir(dir);
  return count;
}

// count_threads(name) once it is `expected`, or after `timeout_ms`: a joined thread can
// stay listed in /proc/self/task for a moment after pthread_join returned.
int settled_thread_count(const std::string &name, int expected, int timeout_ms = 1000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int count = count_threads(name);
  while (count != expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    count = count_threads(name);
  }
  return count;
}

// ------------------------------------------------------------------------------------------
// A process this test starts (tone_player, paplay), with its stdout read line by line.

class Child {
 public:
  Child() = default;
  ~Child() { stop(); }

  bool spawn(const std::vector<std::string> &argv) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      return false;
    }
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      std::vector<char *> args;
      for (const auto &a : argv) {
        args.push_back(const_cast<char *>(a.c_str()));
      }
      args.push_back(nullptr);
      execv(args[0], args.data());
      std::fprintf(stderr, "execv %s: %s\n", args[0], std::strerror(errno));
      _exit(127);
    }
    close(fds[1]);
    if (pid_ < 0) {
      close(fds[0]);
      return false;
    }
    reader_ = std::thread([this, fd = fds[0]] {
      FILE *in = fdopen(fd, "r");
      char line[1024];
      while (in != nullptr && std::fgets(line, sizeof line, in) != nullptr) {
        std::lock_guard<std::mutex> lock(mutex_);
        lines_.emplace_back(line);
        cv_.notify_all();
      }
      if (in != nullptr) {
        fclose(in);
      }
    });
    return true;
  }

  // Waits until `count` lines containing `needle` have been printed.
  bool wait_for_lines(const std::string &needle, size_t count, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
      return static_cast<size_t>(std::count_if(lines_.begin(), lines_.end(), [&](const auto &l) {
               return l.find(needle) != std::string::npos;
             })) >= count;
    });
  }

  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

  // The pid printed on the first line containing `role=R`.
  pid_t pid_of_role(const std::string &role) {
    for (const auto &l : lines()) {
      if (l.find("role=" + role + " ") != std::string::npos) {
        return static_cast<pid_t>(std::atoi(l.c_str() + 4));  // "pid=N ..."
      }
    }
    return 0;
  }

  pid_t pid() const { return pid_; }

  void stop() {
    if (pid_ > 0) {
      terminate_and_reap(pid_);
      pid_ = 0;
    }
    if (reader_.joinable()) {
      reader_.join();
    }
  }

  // The caller reaped it (waitpid) itself.
  void forget_pid() { pid_ = 0; }

 private:
  pid_t pid_ = 0;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

std::vector<std::string> tone_args(const std::vector<std::string> &extra) {
  std::vector<std::string> argv{TONE_PLAYER_PATH};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// ------------------------------------------------------------------------------------------
// The sink: records everything, checks that calls never overlap.

struct PacketRecord {
  uint32_t frames;
  uint32_t flags;
  uint64_t device_ns;
  uint64_t arrival_ns;
  uint64_t first_frame;  // index of its first frame in `samples`
};

class RecordingSink : public procaudio::CaptureSink {
 public:
  explicit RecordingSink(const procaudio::AudioFormat &format, double reserve_seconds = 10)
      : format_(format) {
    samples_.reserve(static_cast<size_t>(reserve_seconds * format.rate * format.channels));
  }

  void on_packet(const Packet &packet) override {
    Enter enter(this);
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) {
      calls_after_stop_++;
    }
    if (exited_ || errored_) {
      calls_after_end_++;
    }
    packets_.push_back({packet.frames, packet.flags, packet.device_time_ns, packet.arrival_time_ns,
                        samples_.size() / format_.channels});
    const size_t n = static_cast<size_t>(packet.frames) * format_.channels;
    if (format_.sample_format == SampleFormat::kF32LE) {
      const float *in = static_cast<const float *>(packet.data);
      samples_.insert(samples_.end(), in, in + n);
    } else {
      const int16_t *in = static_cast<const int16_t *>(packet.data);
      for (size_t i = 0; i < n; ++i) {
        samples_.push_back(static_cast<float>(in[i]) / 32768.0f);
      }
    }
    cv_.notify_all();
  }
  void on_idle(uint64_t now_ns) override {
    Enter enter(this);
    std::lock_guard<std::mutex> lock(mutex_);
    idles_++;
    if (!packets_.empty()) {
      quietest_idle_ns_ = std::min(quietest_idle_ns_, now_ns - packets_.back().arrival_ns);
    }
    if (stopped_) {
      calls_after_stop_++;
    }
    cv_.notify_all();
  }
  void on_target_exit() override {
    Enter enter(this);
    std::lock_guard<std::mutex> lock(mutex_);
    exit_ns_ = monotonic_now_ns();
    exited_ = true;
    exits_++;
    cv_.notify_all();
  }
  void on_error(const CaptureError &error) override {
    Enter enter(this);
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = error;
    error_ns_ = monotonic_now_ns();
    errored_ = true;
    errors_++;
    cv_.notify_all();
  }

  void on_target_state(const procaudio::TargetState &state) override {
    Enter enter(this);
    std::lock_guard<std::mutex> lock(mutex_);
    states_.push_back(state);
    cv_.notify_all();
  }
  std::vector<procaudio::TargetState> states() {
    std::lock_guard<std::mutex> lock(mutex_);
    return states_;
  }

  bool wait(const std::function<bool()> &done, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done);
  }
  // Waits until `seconds` more of audio than now have arrived; returns the frame index now.
  size_t mark() {
    std::lock_guard<std::mutex> lock(mutex_);
    return samples_.size() / format_.channels;
  }
  bool wait_frames(size_t frame_index, int timeout_ms) {
    return wait([&] { return samples_.size() / format_.channels >= frame_index; }, timeout_ms);
  }
  // The call counters, read under the lock (the data loop may still be calling).
  struct Counts {
    int exits, errors, calls_after_stop;
  };
  Counts counts() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {exits_, errors_, calls_after_stop_};
  }
  void mark_stopped() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
  }

  // Peak amplitude of a tone in [begin, begin + count) frames, channel `ch` (Hann-windowed
  // Goertzel: leakage from a tone 100 Hz away is far below -80 dB).
  double tone_db(double freq, size_t begin, size_t count, uint32_t ch = 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t channels = format_.channels;
    if ((begin + count) * channels > samples_.size() || count < 2) {
      ADD_FAILURE() << "analysis window beyond the captured audio";
      return 0;
    }
    const double w = 2.0 * M_PI * freq / format_.rate;
    const double coeff = 2.0 * std::cos(w);
    double s1 = 0, s2 = 0, wsum = 0;
    for (size_t n = 0; n < count; ++n) {
      const double win = 0.5 - 0.5 * std::cos(2.0 * M_PI * n / (count - 1));
      const double v = samples_[(begin + n) * channels + ch] * win;
      const double s = v + coeff * s1 - s2;
      s2 = s1;
      s1 = s;
      wsum += win;
    }
    const double power = std::max(0.0, s1 * s1 + s2 * s2 - coeff * s1 * s2);
    return db(2.0 * std::sqrt(power) / wsum);
  }

  // A run of 32+ near-zero samples on channel 0 inside a tone: a cycle that lost its data.
  bool has_gap(size_t begin, size_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t channels = format_.channels;
    size_t run = 0;
    for (size_t i = begin; i < begin + count && i * channels < samples_.size(); ++i) {
      run = std::fabs(samples_[i * channels]) < 1e-4f ? run + 1 : 0;
      if (run >= 32) {
        return true;
      }
    }
    return false;
  }

  // The first frame with a non-zero sample, or the frame count if there is none.
  size_t first_sound() {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = std::find_if(samples_.begin(), samples_.end(), [](float v) { return v != 0; });
    return static_cast<size_t>(it - samples_.begin()) / format_.channels;
  }

  struct Timing {
    size_t packets = 0;
    // |device(n+1) - device(n) - frames(n)/rate|, over the steps that are not explained below
    double max_step_error_ms = 0;
    // The first cycle after a quantum change is followed after the *old* quantum (the graph
    // clock's own view): there the step error may reach the size difference. This is how far
    // past that (+1 ms) any such step went, and how many there were.
    double max_change_excess_ms = 0;
    size_t quantum_changes = 0;
    // Steps off by whole graph cycles (within 1 ms): a cycle that ran late or was skipped, which
    // only an overloaded machine shows. Counted, and allowed to be rare.
    size_t cycle_slips = 0;
    double slipped_ms = 0;  // the device time those steps added beyond the frames delivered
    double max_lag_ms = 0;  // arrival - device
    double min_lag_ms = 1e9;
    double mean_lag_ms = 0;
    std::set<uint32_t> sizes;
    size_t discontinuities = 0;
    size_t timestamp_errors = 0;
  };
  Timing timing(size_t from_packet = 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    Timing t;
    double lag_sum = 0;
    for (size_t i = from_packet; i < packets_.size(); ++i) {
      const PacketRecord &p = packets_[i];
      t.packets++;
      t.sizes.insert(p.frames);
      const double lag =
          (static_cast<double>(p.arrival_ns) - static_cast<double>(p.device_ns)) / 1e6;
      t.max_lag_ms = std::max(t.max_lag_ms, lag);
      t.min_lag_ms = std::min(t.min_lag_ms, lag);
      lag_sum += lag;
      t.discontinuities += (p.flags & procaudio::kPacketDiscontinuity) ? 1 : 0;
      t.timestamp_errors += (p.flags & procaudio::kPacketTimestampError) ? 1 : 0;
      if (i + 1 < packets_.size()) {
        const PacketRecord &q = packets_[i + 1];
        const double cycle_ms = p.frames * 1e3 / format_.rate;
        const double expected = static_cast<double>(p.device_ns) + p.frames * 1e9 / format_.rate;
        const double signed_error = (static_cast<double>(q.device_ns) - expected) / 1e6;
        const double error = std::fabs(signed_error);
        // A size change by more than the resampler's +-1 frame is a quantum change.
        const int change =
            i > 0 ? std::abs(static_cast<int>(p.frames) - static_cast<int>(packets_[i - 1].frames))
                  : 0;
        const double cycles = error / cycle_ms;
        if (change > 1) {
          t.quantum_changes++;
          t.max_change_excess_ms =
              std::max(t.max_change_excess_ms, error - (change * 1e3 / format_.rate + 1.0));
        } else if (error >= 1.0 && cycles > 0.5 &&
                   std::fabs(cycles - std::round(cycles)) * cycle_ms < 1.0) {
          t.cycle_slips++;
          t.slipped_ms += signed_error;
        } else {
          t.max_step_error_ms = std::max(t.max_step_error_ms, error);
        }
      }
    }
    t.mean_lag_ms = t.packets ? lag_sum / t.packets : 0;
    if (std::getenv("PROCAUDIO_TEST_DUMP_PACKETS") != nullptr) {
      for (size_t i = from_packet; i < packets_.size(); ++i) {
        const PacketRecord &p = packets_[i];
        const double step = i + 1 < packets_.size()
                                ? (static_cast<double>(packets_[i + 1].device_ns) -
                                   static_cast<double>(p.device_ns)) /
                                      1e6
                                : 0;
        std::printf(
            "    packet %zu: %u frames, flags %u, device %.3f ms, step %.3f ms (frames "
            "%.3f ms), lag %.3f ms\n",
            i, p.frames, p.flags, p.device_ns / 1e6, step, p.frames * 1e3 / format_.rate,
            (static_cast<double>(p.arrival_ns) - static_cast<double>(p.device_ns)) / 1e6);
      }
    }
    return t;
  }

  size_t packet_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return packets_.size();
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  procaudio::AudioFormat format_;
  std::vector<float> samples_;
  std::vector<PacketRecord> packets_;
  std::vector<procaudio::TargetState> states_;
  bool stopped_ = false;
  bool exited_ = false;
  bool errored_ = false;
  int exits_ = 0;
  int errors_ = 0;
  int idles_ = 0;
  // The shortest time between a packet and an on_idle after it: at least the idle margin,
  // else on_idle came while packets flowed.
  uint64_t quietest_idle_ns_ = UINT64_MAX;
  int calls_after_stop_ = 0;
  int calls_after_end_ = 0;
  uint64_t exit_ns_ = 0;
  uint64_t error_ns_ = 0;
  CaptureError error_;
  std::atomic<int> in_call_{0};
  std::atomic<int> overlaps_{0};

 private:
  struct Enter {
    explicit Enter(RecordingSink *s) : sink(s) {
      if (sink->in_call_.fetch_add(1) != 0) {
        sink->overlaps_++;
      }
    }
    ~Enter() { sink->in_call_.fetch_sub(1); }
    RecordingSink *sink;
  };
};

procaudio::Logger test_logger() {
  const char *env = std::getenv("PROCAUDIO_TEST_LOG");
  if (env == nullptr || *env == '\0') {
    return {};
  }
  const int max_level = std::atoi(env);
  return procaudio::Logger(
      [max_level](procaudio::LogLevel level) { return static_cast<int>(level) <= max_level; },
      [](procaudio::LogLevel level, const char *file, int line, const char *text) {
        std::fprintf(stderr, "[pw %d] %s:%d %s\n", static_cast<int>(level), file, line, text);
      });
}

CaptureConfig config_of(SampleFormat format = SampleFormat::kF32LE, uint32_t rate = 48000,
                        uint32_t channels = 2) {
  CaptureConfig config;
  config.format.sample_format = format;
  config.format.rate = rate;
  config.format.channels = channels;
  return config;
}

// ------------------------------------------------------------------------------------------

class PipeWireBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(session_.start(/*pulse=*/true, &why)) << why;
  }
  void TearDown() override {
    stop_children();
    session_.stop();
  }

  void stop_children() {
    for (auto &child : children_) {
      child->stop();
    }
    children_.clear();
  }

  // SIGKILLs the session's PipeWire daemon (checked to be it); `killed_ns`: when.
  void kill_daemon(uint64_t *killed_ns) {
    const pid_t daemon = session_.daemon_pid("pipewire");
    ASSERT_GT(daemon, 0);
    ASSERT_EQ(procaudio::proc::comm(static_cast<uint32_t>(daemon)), "pipewire");
    *killed_ns = monotonic_now_ns();
    ASSERT_EQ(kill(daemon, SIGKILL), 0);
  }

  // The sink got on_error(kDeviceLost) within 2 s of `killed_ns`.
  void expect_lost_within_2s(RecordingSink &sink, uint64_t killed_ns) {
    ASSERT_TRUE(sink.wait([&] { return sink.errored_; }, 2000)) << "no on_error within 2 s";
    const double delay_ms =
        (static_cast<double>(sink.error_ns_) - static_cast<double>(killed_ns)) / 1e6;
    std::printf("  on_error %.3f ms after SIGKILL: %s / %s\n", delay_ms,
                sink.error_.message.c_str(), sink.error_.detail.c_str());
    EXPECT_EQ(sink.error_.kind, ErrorKind::kDeviceLost);
    EXPECT_LT(delay_ms, 2000.0);
  }

  // Starts tone_player with these arguments and waits until `streams` of its streams run.
  Child *play(const std::vector<std::string> &args, size_t streams = 1) {
    children_.push_back(std::make_unique<Child>());
    Child *child = children_.back().get();
    EXPECT_TRUE(child->spawn(tone_args(args)));
    if (streams > 0) {
      EXPECT_TRUE(child->wait_for_lines(" streaming ", streams, 5000))
          << "tone_player " << args[0] << " did not start streaming";
    }
    return child;
  }

  // Opens and starts `backend` on `target`; fails the test on error.
  void start_capture(PipeWireBackend &backend, const TargetSpec &target, RecordingSink &sink,
                     const CaptureConfig &config) {
    const CaptureError open_error = backend.open(target);
    ASSERT_FALSE(open_error) << open_error.message << " / " << open_error.detail;
    const CaptureError start_error = backend.start(config, sink);
    ASSERT_FALSE(start_error) << start_error.message << " / " << start_error.detail;
  }

  // Waits until `links` links are up, then for `seconds` of audio after that; returns the
  // index of the first frame captured with the links up (plus a settling margin).
  size_t capture_with_links(PipeWireBackend &backend, RecordingSink &sink, uint32_t links,
                            double seconds) {
    const uint64_t deadline = monotonic_now_ns() + 5'000'000'000ull;
    // The registry thread makes links; nothing to wait on from here but its statistics,
    // so wait on the sink's packets (one per graph cycle) and look at them each time.
    bool linked = false;
    while (!linked && monotonic_now_ns() < deadline) {
      const size_t next = sink.packet_count() + 1;
      sink.wait([&] { return sink.packets_.size() >= next; }, 200);
      linked = backend.link_stats().links_active >= links;
    }
    EXPECT_TRUE(linked) << "only " << backend.link_stats().links_active << " of " << links
                        << " links came up";
    const uint32_t rate = sink.format_.rate;
    const size_t begin = sink.mark() + rate / 5;  // 200 ms margin: the first linked cycles
    EXPECT_TRUE(sink.wait_frames(begin + static_cast<size_t>(seconds * rate),
                                 static_cast<int>(seconds * 1000) + 3000))
        << "the capture stalled";
    return begin;
  }

  void expect_tone(RecordingSink &sink, double freq, size_t begin, size_t count, const char *what) {
    for (uint32_t ch = 0; ch < sink.format_.channels; ++ch) {
      const double level = sink.tone_db(freq, begin, count, ch);
      std::printf("  %-28s %6.0f Hz ch%u: %8.2f dBFS (played %.2f dBFS)\n", what, freq, ch, level,
                  db(kPlayedAmplitude));
      EXPECT_NEAR(level, db(kPlayedAmplitude), kLevelToleranceDb) << what << " " << freq << " Hz";
    }
  }

  void expect_absent(RecordingSink &sink, double freq, size_t begin, size_t count,
                     const char *what) {
    for (uint32_t ch = 0; ch < sink.format_.channels; ++ch) {
      const double level = sink.tone_db(freq, begin, count, ch);
      std::printf("  %-28s %6.0f Hz ch%u: %8.2f dBFS (must be <= %.0f)\n", what, freq, ch, level,
                  kAbsentDb);
      EXPECT_LE(level, kAbsentDb) << what << " " << freq << " Hz";
    }
  }

  void expect_timing(RecordingSink &sink, const char *what) {
    const RecordingSink::Timing t = sink.timing(1);
    std::string sizes;
    for (uint32_t s : t.sizes) {
      sizes += std::to_string(s) + " ";
    }
    std::printf(
        "  %s: %zu packets, sizes {%s}, max step error %.3f ms, %zu quantum changes "
        "(worst excess %.3f ms), %zu cycle slips, lag arrival-device min %.3f / mean "
        "%.3f / max %.3f ms, %zu discont, %zu ts errors\n",
        what, t.packets, sizes.c_str(), t.max_step_error_ms, t.quantum_changes,
        t.quantum_changes ? t.max_change_excess_ms : 0.0, t.cycle_slips, t.min_lag_ms,
        t.mean_lag_ms, t.max_lag_ms, t.discontinuities, t.timestamp_errors);
    EXPECT_GT(t.packets, 10u);
    EXPECT_LT(t.max_step_error_ms, 1.0) << "device times are not continuous";
    EXPECT_LE(t.max_change_excess_ms, 0.0) << "a quantum change moved device time too far";
    EXPECT_LE(t.cycle_slips, std::max<size_t>(2, t.packets / 50))
        << "the graph slipped cycles often (an overloaded machine?)";
    EXPECT_EQ(t.discontinuities, 0u);
    EXPECT_LT(t.max_lag_ms, 40.0) << "device time too far from arrival";
    EXPECT_GE(t.min_lag_ms, 0.0) << "device time after arrival";
    EXPECT_EQ(t.timestamp_errors, 0u);
    EXPECT_EQ(sink.overlaps_.load(), 0) << "sink calls overlapped";
  }

  Session session_;
  std::vector<std::unique_ptr<Child>> children_;
};

// ------------------------------------------------------------------------------------------

TEST(PipeWireBackendNoServer, OpenWithoutPipeWireNamesSocketAndRuntimeDir) {
  char dir_template[] = "/tmp/procaudio-nopw-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  std::map<std::string, std::pair<bool, std::string>> saved;
  for (const char *name : {"XDG_RUNTIME_DIR", "PIPEWIRE_RUNTIME_DIR", "PIPEWIRE_REMOTE"}) {
    const char *old = std::getenv(name);
    saved[name] = old ? std::make_pair(true, std::string(old)) : std::make_pair(false, "");
    unsetenv(name);
  }
  setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);

  PipeWireBackend backend(test_logger());
  TargetSpec target;  // no target: only the connection is checked
  target.mode = TargetMode::kExcludeTree;
  const CaptureError error = backend.open(target);
  std::printf("  message: %s\n  detail:  %s\n", error.message.c_str(), error.detail.c_str());
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.message.find(dir + "/pipewire-0"), std::string::npos);
  EXPECT_NE(error.message.find("XDG_RUNTIME_DIR=" + dir), std::string::npos);
  EXPECT_NE(error.detail.find("errno"), std::string::npos);

  unsetenv("XDG_RUNTIME_DIR");
  const CaptureError unset_error = backend.open(target);
  std::printf("  message: %s\n", unset_error.message.c_str());
  EXPECT_EQ(unset_error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(unset_error.message.find("XDG_RUNTIME_DIR is not set"), std::string::npos);

  for (const auto &kv : saved) {
    if (kv.second.first) {
      setenv(kv.first.c_str(), kv.second.second.c_str(), 1);
    } else {
      unsetenv(kv.first.c_str());
    }
  }
  rmdir(dir.c_str());
}

TEST(PipeWireBackendNoServer, FormatsCoverWhatTheElementNegotiates) {
  PipeWireBackend backend;
  const procaudio::FormatCaps caps = backend.formats();
  procaudio::AudioFormat format;
  for (SampleFormat f : {SampleFormat::kF32LE, SampleFormat::kS16LE}) {
    for (uint32_t rate : {8000u, 16000u, 44100u, 48000u, 96000u, 192000u}) {
      for (uint32_t channels : {1u, 2u}) {
        format.sample_format = f;
        format.rate = rate;
        format.channels = channels;
        EXPECT_TRUE(caps.accepts(format)) << rate << " Hz " << channels << " ch";
      }
    }
  }
  format.rate = 48000;
  format.channels = 3;
  EXPECT_FALSE(caps.accepts(format));
  format.channels = 2;
  format.rate = 7999;
  EXPECT_FALSE(caps.accepts(format));
  EXPECT_GT(backend.latency_ns(), 0u);
  EXPECT_GE(backend.idle_margin_ns(), backend.latency_ns());
}

TEST(ProcTree, ResolvesNamesAndTrees) {
  const uint32_t self = static_cast<uint32_t>(getpid());
  EXPECT_TRUE(procaudio::proc::process_exists(self));
  EXPECT_EQ(procaudio::proc::parent_pid(self), static_cast<uint32_t>(getppid()));
  EXPECT_TRUE(procaudio::proc::is_in_tree(self, self));
  EXPECT_TRUE(procaudio::proc::is_in_tree(self, static_cast<uint32_t>(getppid())));
  EXPECT_FALSE(procaudio::proc::is_in_tree(static_cast<uint32_t>(getppid()), self));
  EXPECT_FALSE(procaudio::proc::exe_basename(self).empty());
  uint32_t pid = 0;
  EXPECT_EQ(procaudio::proc::resolve_process_name("procaudio-no-such-process", &pid).kind,
            ErrorKind::kNotFound);
  // A reaped child's pid names no process.
  const pid_t gone = fork();
  if (gone == 0) {
    _exit(0);
  }
  waitpid(gone, nullptr, 0);
  EXPECT_FALSE(procaudio::proc::process_exists(static_cast<uint32_t>(gone)));
  EXPECT_EQ(procaudio::proc::check_pid(static_cast<uint32_t>(gone)).kind, ErrorKind::kNotFound);
}

TEST_F(PipeWireBackendTest, NoSuchPidOrNameIsNotFound) {
  const pid_t gone = fork();
  if (gone == 0) {
    _exit(0);
  }
  waitpid(gone, nullptr, 0);
  PipeWireBackend backend(test_logger());
  TargetSpec by_pid;
  by_pid.pid = static_cast<uint32_t>(gone);
  CaptureError error = backend.open(by_pid);
  std::printf("  pid: %s / %s\n", error.message.c_str(), error.detail.c_str());
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
  EXPECT_NE(error.detail.find("errno"), std::string::npos);
  TargetSpec by_name;
  by_name.process_name = "procaudio-no-such-process";
  error = backend.open(by_name);
  std::printf("  name: %s / %s\n", error.message.c_str(), error.detail.c_str());
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
}

TEST_F(PipeWireBackendTest, CapturesOnlyTheTargetByPid) {
  Child *target = play({"--freq", "440"});
  play({"--freq", "1000"});  // distractor
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  EXPECT_EQ(backend.resolved_pid(), spec.pid);
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "target");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  expect_timing(sink, "by pid");
  const auto stats = backend.link_stats();
  std::printf(
      "  links: %u active, %u made, %u failed, streams captured %u skipped %u, max link "
      "delay %.2f ms; latency %.2f ms, idle margin %.1f ms\n",
      stats.links_active, stats.links_made, stats.links_failed, stats.streams_captured,
      stats.streams_skipped, stats.max_link_delay_ns / 1e6, backend.latency_ns() / 1e6,
      backend.idle_margin_ns() / 1e6);
  EXPECT_EQ(stats.streams_captured, 1u);
  EXPECT_GE(stats.streams_skipped, 1u);
  EXPECT_EQ(stats.links_failed, 0u);
  {
    // on_idle before the first packet (a slow start) or in a stall of the graph (an
    // overloaded machine) is right; while packets flow, one per quantum, it is not: the
    // idle margin is at least 4 quanta and 50 ms.
    std::lock_guard<std::mutex> lock(sink.mutex_);
    EXPECT_GE(sink.quietest_idle_ns_, 50'000'000u) << "on_idle while packets flow";
    EXPECT_EQ(sink.exits_ + sink.errors_, 0);
  }
  const uint64_t stop_begin = monotonic_now_ns();
  backend.stop();
  sink.mark_stopped();
  std::printf("  stop() took %.2f ms\n", (monotonic_now_ns() - stop_begin) / 1e6);
  // Nothing may reach the sink after stop() returned (bounded look: 300 ms).
  EXPECT_FALSE(sink.wait([&] { return sink.calls_after_stop_ > 0; }, 300));
  backend.close();
}

TEST_F(PipeWireBackendTest, CapturesByProcessName) {
  // A copy of tone_player under a name no other process has.
  const std::string copy = session_.dir() + "/pa-named-tone";
  {
    std::ifstream in(TONE_PLAYER_PATH, std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
  }
  ASSERT_EQ(chmod(copy.c_str(), 0755), 0);
  children_.push_back(std::make_unique<Child>());
  Child *target = children_.back().get();
  ASSERT_TRUE(target->spawn({copy, "--freq", "440"}));
  ASSERT_TRUE(target->wait_for_lines(" streaming ", 1, 5000));
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.process_name = "pa-named-tone";
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  EXPECT_EQ(backend.resolved_pid(), static_cast<uint32_t>(target->pid()));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "target by name");
  expect_absent(sink, 1000, begin, 48000, "distractor");
}

TEST_F(PipeWireBackendTest, ExcludeTreeGivesTheOpposite) {
  // The target tree: 440 Hz in the target, 660 Hz in its child. The distractor: 1000 Hz.
  Child *target = play({"--freq", "440", "--child", "660"}, 2);
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  spec.mode = TargetMode::kExcludeTree;
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 1000, begin, 48000, "everything else");
  expect_absent(sink, 440, begin, 48000, "excluded target");
  expect_absent(sink, 660, begin, 48000, "excluded child");
  EXPECT_EQ(backend.link_stats().streams_captured, 1u);
}

TEST_F(PipeWireBackendTest, IncludeTreeCapturesAGrandchild) {
  // target (440) -> child (silent) -> grandchild (660); distractor 1000.
  Child *target = play({"--freq", "440", "--grandchild", "660"}, 2);
  play({"--freq", "1000"});
  const pid_t grandchild = target->pid_of_role("grandchild");
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(procaudio::proc::is_in_tree(static_cast<uint32_t>(grandchild),
                                          static_cast<uint32_t>(target->pid())));
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 4, 1.0);
  expect_tone(sink, 440, begin, 48000, "target");
  expect_tone(sink, 660, begin, 48000, "grandchild");
  expect_absent(sink, 1000, begin, 48000, "distractor");
}

TEST_F(PipeWireBackendTest, LateStreamsAreLinkedWithin50ms) {
  // The target process exists when the capture starts but opens its stream 1 s later.
  // Until then the capture is digital silence (nothing else is linked, no fallback); then its
  // stream is linked within 50 ms of its ports appearing.
  play({"--freq", "1000"});
  children_.push_back(std::make_unique<Child>());
  Child *target = children_.back().get();
  ASSERT_TRUE(target->spawn(tone_args({"--freq", "440", "--start-delay", "1000"})));
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  ASSERT_TRUE(target->wait_for_lines(" streaming ", 1, 5000));
  // The first sound captured is the target's, after silence: what came before it was
  // nobody's audio, and the distractor never got in.
  ASSERT_TRUE(sink.wait_frames(sink.mark() + 24000, 3000));
  const size_t onset = sink.first_sound();
  EXPECT_GT(onset, 0u) << "no silence before the target streamed: was start() over 1 s?";
  ASSERT_TRUE(sink.wait_frames(onset + 4800, 3000));
  expect_tone(sink, 440, onset, 4800, "target's first 100 ms");
  expect_absent(sink, 1000, onset, 4800, "distractor, target's first 100 ms");
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "late target");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  const auto stats = backend.link_stats();
  std::printf("  max link delay %.3f ms\n", stats.max_link_delay_ns / 1e6);
  EXPECT_LT(stats.max_link_delay_ns, 50'000'000u);
  expect_timing(sink, "late start");
}

TEST_F(PipeWireBackendTest, VanishedStreamsAreForgotten) {
  // The target plays 440 Hz on; its child plays 660 Hz for 1 s and exits. Its links go with
  // it, nothing else takes their place, and the capture goes on with the target alone.
  Child *target = play({"--freq", "440", "--child", "660", "--child-seconds", "1"}, 2);
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 4, 0.2);
  ASSERT_TRUE(target->wait_for_lines("role=child exit", 1, 5000));
  // Wait (on packets) until the child's two links are gone.
  const uint64_t deadline = monotonic_now_ns() + 3'000'000'000ull;
  while (backend.link_stats().links_active > 2 && monotonic_now_ns() < deadline) {
    const size_t next = sink.packet_count() + 1;
    sink.wait([&] { return sink.packets_.size() >= next; }, 200);
  }
  EXPECT_EQ(backend.link_stats().links_active, 2u);
  const size_t begin = sink.mark() + 4800;
  ASSERT_TRUE(sink.wait_frames(begin + 48000, 4000));
  expect_tone(sink, 440, begin, 48000, "target after the child left");
  expect_absent(sink, 660, begin, 48000, "child, gone");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  const RecordingSink::Counts counts = sink.counts();
  EXPECT_EQ(counts.errors + counts.exits, 0);
}

TEST_F(PipeWireBackendTest, TwoStreamsOfOneProcessAreMixed) {
  // Stream 0: 440 Hz, 48 kHz stereo; stream 1: 660 Hz, 44.1 kHz mono.
  Child *target = play({"--freq", "440,660", "--streams", "2"}, 2);
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  // stereo stream: FL->FL, FR->FR; mono stream: MONO->FL, MONO->FR
  const size_t begin = capture_with_links(backend, sink, 4, 1.0);
  expect_tone(sink, 440, begin, 48000, "stream 0 (48k stereo)");
  expect_tone(sink, 660, begin, 48000, "stream 1 (44.1k mono)");
  expect_absent(sink, 1000, begin, 48000, "distractor");
  EXPECT_EQ(backend.link_stats().streams_captured, 2u);
}

TEST_F(PipeWireBackendTest, PulseClientByPid) {
  const char *paplay = "/usr/bin/paplay";
  if (access(paplay, X_OK) != 0) {
    GTEST_SKIP() << "paplay (Debian package pulseaudio-utils) is not installed";
  }
  // A 440 Hz WAV, amplitude 0.5, 48 kHz stereo float, 20 s.
  const std::string wav = session_.dir() + "/tone440.wav";
  {
    const uint32_t rate = 48000, channels = 2, frames = rate * 20;
    const uint32_t data_bytes = frames * channels * 4;
    std::ofstream out(wav, std::ios::binary);
    auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char *>(&v), 4); };
    auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<const char *>(&v), 2); };
    out.write("RIFF", 4);
    u32(36 + data_bytes);
    out.write("WAVEfmt ", 8);
    u32(16);
    u16(3);  // IEEE float
    u16(channels);
    u32(rate);
    u32(rate * channels * 4);
    u16(channels * 4);
    u16(32);
    out.write("data", 4);
    u32(data_bytes);
    std::vector<float> block(static_cast<size_t>(rate) * channels);
    for (uint32_t second = 0; second < 20; ++second) {
      for (uint32_t i = 0; i < rate; ++i) {
        const float v = static_cast<float>(kPlayedAmplitude * std::sin(2 * M_PI * 440 * i / rate));
        block[i * 2] = block[i * 2 + 1] = v;
      }
      out.write(reinterpret_cast<const char *>(block.data()), block.size() * 4);
    }
  }
  play({"--freq", "1000"});
  children_.push_back(std::make_unique<Child>());
  Child *target = children_.back().get();
  ASSERT_TRUE(target->spawn({paplay, wav}));
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 48000, "paplay (pulse client)");
  expect_absent(sink, 1000, begin, 48000, "distractor");
}

TEST_F(PipeWireBackendTest, MonoS16At16kHz) {
  Child *target = play({"--freq", "440"});
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  const CaptureConfig config = config_of(SampleFormat::kS16LE, 16000, 1);
  RecordingSink sink(config.format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config));
  const size_t begin = capture_with_links(backend, sink, 2, 1.0);
  expect_tone(sink, 440, begin, 16000, "target, S16LE mono 16 kHz");
  expect_absent(sink, 1000, begin, 16000, "distractor");
  expect_timing(sink, "S16LE mono 16 kHz");
}

TEST_F(PipeWireBackendTest, TargetExitEndsTheCaptureWithin500ms) {
  Child *target = play({"--freq", "440", "--seconds", "1.5"});
  play({"--freq", "1000"});
  const int pidfd = pidfd_open(target->pid());
  ASSERT_GE(pidfd, 0);
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  // The moment the target exits, seen by this test through its own pidfd.
  ASSERT_TRUE(wait_readable(pidfd, 5000)) << "the target did not exit";
  const uint64_t exited_ns = monotonic_now_ns();
  close(pidfd);
  ASSERT_TRUE(sink.wait([&] { return sink.exited_; }, 2000)) << "no on_target_exit";
  const double delay_ms =
      (static_cast<double>(sink.exit_ns_) - static_cast<double>(exited_ns)) / 1e6;
  std::printf("  on_target_exit %.3f ms after the target exited\n", delay_ms);
  EXPECT_LT(delay_ms, 500.0);
  // Nothing after the end: no more packets, no second exit, no error.
  EXPECT_FALSE(sink.wait([&] { return sink.calls_after_end_ > 0; }, 300));
  const RecordingSink::Counts counts = sink.counts();
  EXPECT_EQ(counts.exits, 1);
  EXPECT_EQ(counts.errors, 0);
  waitpid(target->pid(), nullptr, 0);
  target->forget_pid();
  backend.stop();
  backend.close();
}

TEST_F(PipeWireBackendTest, DaemonDeathIsAnErrorWithin2s) {
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 2, 0.3);
  uint64_t killed_ns = 0;
  ASSERT_NO_FATAL_FAILURE(kill_daemon(&killed_ns));
  ASSERT_NO_FATAL_FAILURE(expect_lost_within_2s(sink, killed_ns));
  const uint64_t stop_begin = monotonic_now_ns();
  backend.stop();
  backend.close();
  const double stop_ms = (monotonic_now_ns() - stop_begin) / 1e6;
  std::printf("  stop()+close() after the daemon died: %.3f ms\n", stop_ms);
  EXPECT_LT(stop_ms, 1000.0);
  EXPECT_EQ(sink.counts().errors, 1);
  EXPECT_EQ(sink.overlaps_.load(), 0);
}

TEST_F(PipeWireBackendTest, DaemonDeathEndsEveryBackendOnTheSharedConnection) {
  // Two backends share one connection; the daemon dies: each gets kDeviceLost within 2 s and
  // stops at once. With one of them still open (holding the dead connection), the daemon is
  // started again on the same socket: a new open() gets a new connection and captures, and
  // the old backend, opened again, joins it.
  Child *first = play({"--freq", "440"});
  Child *second = play({"--freq", "660"});
  PipeWireBackend a(test_logger());
  PipeWireBackend b(test_logger());
  RecordingSink sink_a(config_of().format);
  RecordingSink sink_b(config_of().format);
  TargetSpec spec_a;
  spec_a.pid = static_cast<uint32_t>(first->pid());
  TargetSpec spec_b;
  spec_b.pid = static_cast<uint32_t>(second->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(a, spec_a, sink_a, config_of()));
  ASSERT_NO_FATAL_FAILURE(start_capture(b, spec_b, sink_b, config_of()));
  capture_with_links(a, sink_a, 2, 0.3);
  capture_with_links(b, sink_b, 2, 0.3);
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1)
      << "the two backends do not share a connection";

  uint64_t killed_ns = 0;
  ASSERT_NO_FATAL_FAILURE(kill_daemon(&killed_ns));
  for (RecordingSink *sink : {&sink_a, &sink_b}) {
    ASSERT_NO_FATAL_FAILURE(expect_lost_within_2s(*sink, killed_ns));
  }
  uint64_t stop_begin = monotonic_now_ns();
  b.stop();
  b.close();
  a.stop();  // `a` stays open: the dead connection is still referenced
  EXPECT_LT((monotonic_now_ns() - stop_begin) / 1e6, 1000.0);
  EXPECT_EQ(sink_a.counts().errors, 1);
  EXPECT_EQ(sink_b.counts().errors, 1);
  EXPECT_EQ(sink_a.overlaps_.load(), 0);
  EXPECT_EQ(sink_b.overlaps_.load(), 0);
  // A stopped backend on the dead connection cannot start again.
  RecordingSink sink_dead(config_of().format);
  const CaptureError dead = a.start(config_of(), sink_dead);
  EXPECT_EQ(dead.kind, ErrorKind::kDeviceLost) << dead.message;

  // The daemon back, on the same socket.
  stop_children();
  const std::string dir = session_.dir();
  session_.stop();
  std::string why;
  ASSERT_TRUE(session_.start(/*pulse=*/true, &why, dir)) << why;
  Child *third = play({"--freq", "880"});
  PipeWireBackend c(test_logger());
  RecordingSink sink_c(config_of().format);
  TargetSpec spec_c;
  spec_c.pid = static_cast<uint32_t>(third->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(c, spec_c, sink_c, config_of()));
  size_t begin = capture_with_links(c, sink_c, 2, 0.5);
  expect_tone(sink_c, 880, begin, 24000, "new connection");
  EXPECT_EQ(sink_c.counts().errors, 0);

  // The old backend, opened again, shares the new connection; the dead one is gone with it.
  RecordingSink sink_again(config_of().format);
  ASSERT_NO_FATAL_FAILURE(start_capture(a, spec_c, sink_again, config_of()));
  begin = capture_with_links(a, sink_again, 2, 0.5);
  expect_tone(sink_again, 880, begin, 24000, "reopened");
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1);
  a.stop();
  a.close();
  c.stop();
  c.close();
  EXPECT_EQ(settled_thread_count("procaudio-pw", 0), 0)
      << "the last close() leaves no thread behind";
}

TEST_F(PipeWireBackendTest, IdleTicksWhileTheGraphStalls) {
  // SIGSTOP on the daemon stops the graph (its driver runs there): no packets come, so the
  // backend's idle tick tells the sink; after SIGCONT packets flow again, and no error.
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 2, 0.3);
  const pid_t daemon = session_.daemon_pid("pipewire");
  ASSERT_GT(daemon, 0);
  ASSERT_EQ(kill(daemon, SIGSTOP), 0);
  const uint64_t stopped_ns = monotonic_now_ns();
  const bool idled = sink.wait([&] { return sink.idles_ >= 3; }, 3000);
  const double idle_ms = (monotonic_now_ns() - stopped_ns) / 1e6;
  const size_t packets_at_resume = sink.packet_count();
  ASSERT_EQ(kill(daemon, SIGCONT), 0);
  ASSERT_TRUE(idled) << "no on_idle while the graph stood still";
  std::printf("  3 idle ticks %.1f ms after the graph stopped (idle margin %.1f ms)\n", idle_ms,
              backend.idle_margin_ns() / 1e6);
  EXPECT_TRUE(sink.wait([&] { return sink.packets_.size() >= packets_at_resume + 10; }, 3000))
      << "packets did not come back after SIGCONT";
  EXPECT_EQ(sink.counts().errors, 0);
  EXPECT_EQ(sink.overlaps_.load(), 0);
}

TEST_F(PipeWireBackendTest, QuantumChangesKeepTimestampsContinuous) {
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  capture_with_links(backend, sink, 2, 0.5);
  for (const char *quantum : {"256", "2048", "0"}) {
    const std::string cmd =
        std::string("pw-metadata -n settings 0 clock.force-quantum ") + quantum + " >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    const size_t mark = sink.mark();
    ASSERT_TRUE(sink.wait_frames(mark + 48000 / 2, 3000));
  }
  const size_t begin = sink.mark();
  ASSERT_TRUE(sink.wait_frames(begin + 48000, 3000));
  expect_tone(sink, 440, begin, 48000, "after quantum changes");
  const RecordingSink::Timing t = sink.timing(1);
  EXPECT_GE(t.sizes.size(), 3u) << "the quantum did not change";
  expect_timing(sink, "quantum 1024 -> 256 -> 2048 -> default");
}

TEST_F(PipeWireBackendTest, NoTargetCapturesEverythingButThisProcess) {
  play({"--freq", "440"});
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format);
  TargetSpec spec;  // no target, exclude-tree: everything but us
  spec.mode = TargetMode::kExcludeTree;
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t begin = capture_with_links(backend, sink, 4, 1.0);
  expect_tone(sink, 440, begin, 48000, "player 1");
  expect_tone(sink, 1000, begin, 48000, "player 2");
  // This process's own capture stream is an input, never a source of itself.
  EXPECT_EQ(backend.link_stats().streams_captured, 2u);
}

TEST_F(PipeWireBackendTest, TenBackendsEachGetOnlyTheirTone) {
  constexpr int kCount = 10;
  std::vector<double> freqs;
  std::vector<Child *> players;
  for (int i = 0; i < kCount; ++i) {
    freqs.push_back(300.0 + 110.0 * i);
    players.push_back(play({"--freq", std::to_string(freqs.back())}));
  }
  std::vector<std::unique_ptr<PipeWireBackend>> backends;
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  for (int i = 0; i < kCount; ++i) {
    backends.push_back(std::make_unique<PipeWireBackend>(test_logger()));
    sinks.push_back(std::make_unique<RecordingSink>(config_of().format));
    TargetSpec spec;
    spec.pid = static_cast<uint32_t>(players[i]->pid());
    ASSERT_NO_FATAL_FAILURE(start_capture(*backends[i], spec, *sinks[i], config_of()));
  }
  for (int i = 0; i < kCount; ++i) {
    capture_with_links(*backends[i], *sinks[i], 2, 0.0);
  }
  // One PipeWire connection (thread loop, context, data loop) for all ten.
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1);
  // Three 1 s windows each. Twenty real-time clients on two cores may glitch (a player that
  // misses a cycle leaves a gap, whose click spreads over every frequency); a wrong link
  // would show in every window, so each backend is judged on its first window whose own
  // tone has no gap.
  std::vector<size_t> begins;
  for (int i = 0; i < kCount; ++i) {
    begins.push_back(sinks[i]->mark());
  }
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(sinks[i]->wait_frames(begins[i] + 3 * 48000, 8000)) << "backend " << i;
  }
  for (int i = 0; i < kCount; ++i) {
    const std::string what = "backend " + std::to_string(i);
    size_t begin = 0;
    int glitched = 0;
    for (int w = 0; w < 3; ++w) {
      if (!sinks[i]->has_gap(begins[i] + w * 48000, 48000)) {
        begin = begins[i] + w * 48000;
        break;
      }
      glitched++;
    }
    ASSERT_LT(glitched, 3) << what << ": a gap in its tone in every window (overloaded machine?)";
    expect_tone(*sinks[i], freqs[i], begin, 48000, what.c_str());
    double loudest_other = -300;
    for (int j = 0; j < kCount; ++j) {
      if (j != i) {
        loudest_other = std::max(loudest_other, sinks[i]->tone_db(freqs[j], begin, 48000));
      }
    }
    std::printf("  %s: loudest other tone %.1f dBFS (%d glitched windows skipped)\n", what.c_str(),
                loudest_other, glitched);
    EXPECT_LE(loudest_other, kAbsentDb);
  }
  for (auto &b : backends) {
    b->stop();
    b->close();
  }
}

TEST_F(PipeWireBackendTest, ConcurrentOpenStartStopCloseOnTheSharedConnection) {
  // Four threads open, start, stop and close backends of their own at once: first while one
  // more backend captures throughout (the connection stays up; the steady capture must keep
  // its tone without an error), then alone (the last close of one thread tears the
  // connection down while another thread makes a new one). Nothing hangs or fails.
  Child *target = play({"--freq", "440"});
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  constexpr int kThreads = 4;
  constexpr int kRounds = 6;
  std::atomic<int> failures{0};
  std::atomic<int> rounds_with_audio{0};
  auto churn = [&] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int round = 0; round < kRounds; ++round) {
          PipeWireBackend backend(test_logger());
          RecordingSink sink(config_of().format, 1);
          if (CaptureError error = backend.open(spec)) {
            std::printf("  open: %s / %s\n", error.message.c_str(), error.detail.c_str());
            failures++;
            continue;
          }
          if (CaptureError error = backend.start(config_of(), sink)) {
            std::printf("  start: %s / %s\n", error.message.c_str(), error.detail.c_str());
            failures++;
            continue;  // the destructor closes
          }
          if (sink.wait([&] { return sink.packets_.size() >= 3; }, 3000)) {
            rounds_with_audio++;
          }
          backend.stop();
          sink.mark_stopped();
          if (round % 2 == 0) {
            backend.close();  // else the destructor closes
          }
          const RecordingSink::Counts counts = sink.counts();
          if (counts.errors != 0 || counts.calls_after_stop != 0 || sink.overlaps_.load() != 0) {
            failures++;
          }
        }
      });
    }
    for (auto &thread : threads) {
      thread.join();
    }
  };

  PipeWireBackend steady(test_logger());
  RecordingSink steady_sink(config_of().format, 30);
  ASSERT_NO_FATAL_FAILURE(start_capture(steady, spec, steady_sink, config_of()));
  capture_with_links(steady, steady_sink, 2, 0.2);
  const size_t begin = steady_sink.mark();
  churn();
  ASSERT_TRUE(steady_sink.wait_frames(begin + 24000, 3000)) << "the steady capture stalled";
  expect_tone(steady_sink, 440, begin, 24000, "steady capture");
  EXPECT_EQ(steady_sink.counts().errors, 0);
  EXPECT_EQ(steady_sink.overlaps_.load(), 0);
  EXPECT_EQ(settled_thread_count("procaudio-pw", 1), 1);
  steady.stop();
  steady.close();
  EXPECT_EQ(settled_thread_count("procaudio-pw", 0), 0);

  churn();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(rounds_with_audio.load(), 2 * kThreads * kRounds);
  EXPECT_EQ(settled_thread_count("procaudio-pw", 0), 0) << "a connection outlived its last backend";
}

TEST_F(PipeWireBackendTest, StopAndStartAgain) {
  Child *target = play({"--freq", "440"});
  PipeWireBackend backend(test_logger());
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_FALSE(backend.open(spec));
  for (int round = 0; round < 3; ++round) {
    RecordingSink sink(config_of().format);
    const CaptureError error = backend.start(config_of(), sink);
    ASSERT_FALSE(error) << error.message;
    const size_t begin = capture_with_links(backend, sink, 2, 0.5);
    expect_tone(sink, 440, begin, 24000, "round");
    backend.stop();
    sink.mark_stopped();
    EXPECT_FALSE(sink.wait([&] { return sink.calls_after_stop_ > 0; }, 200));
    EXPECT_EQ(backend.link_stats().links_active, 0u);
  }
  backend.close();
}

TEST_F(PipeWireBackendTest, LongCaptureStaysContinuous) {
  const char *env = std::getenv("PROCAUDIO_PW_LONG_SECONDS");
  const double seconds = env ? std::atof(env) : 60.0;
  Child *target = play({"--freq", "440"});
  play({"--freq", "1000"});
  PipeWireBackend backend(test_logger());
  RecordingSink sink(config_of().format, seconds + 10);
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  ASSERT_NO_FATAL_FAILURE(start_capture(backend, spec, sink, config_of()));
  const size_t f0 = sink.mark();
  ASSERT_TRUE(sink.wait_frames(f0 + static_cast<size_t>(seconds * 48000),
                               static_cast<int>(seconds * 1000) + 5000));
  expect_timing(sink, "long capture");
  const size_t end = sink.mark();
  expect_tone(sink, 440, end - 48000, 48000, "last second");
  expect_absent(sink, 1000, end - 48000, 48000, "distractor, last second");
  // Frames, device time and arrival time span the same duration, but for the graph cycles
  // an overloaded machine skipped (expect_timing bounds how many): those add device and
  // arrival time, no frames.
  const double slipped = sink.timing().slipped_ms / 1e3;
  std::lock_guard<std::mutex> lock(sink.mutex_);
  const auto &first = sink.packets_.front();
  const auto &last = sink.packets_.back();
  const double device_span = (last.device_ns - first.device_ns) / 1e9;
  const double arrival_span = (last.arrival_ns - first.arrival_ns) / 1e9;
  const double frame_span = (last.first_frame - first.first_frame) / 48000.0;
  std::printf("  frames span %.6f s, device time %.6f s, arrival time %.6f s, %.3f ms slipped\n",
              frame_span, device_span, arrival_span, slipped * 1e3);
  EXPECT_NEAR(device_span - slipped, frame_span, 0.040);
  EXPECT_NEAR(arrival_span - slipped, frame_span, 0.1);
}

// Phase of a tone against absolute device time: captures at other rates (resampled by
// PipeWire) must carry the same timestamps as the 48 kHz one, to well under a millisecond.
double phase_at(RecordingSink &sink, double freq, uint64_t t0, uint64_t t1) {
  std::lock_guard<std::mutex> lock(sink.mutex_);
  double re = 0, im = 0;
  for (const auto &p : sink.packets_) {
    for (uint32_t i = 0; i < p.frames; ++i) {
      const double t = static_cast<double>(p.device_ns) + i * 1e9 / sink.format_.rate;
      if (t < static_cast<double>(t0) || t >= static_cast<double>(t1)) {
        continue;
      }
      const double x = sink.samples_[(p.first_frame + i) * sink.format_.channels];
      const double a = 2 * M_PI * freq * std::fmod(t - static_cast<double>(t0), 1e9) / 1e9;
      re += x * std::cos(a);
      im -= x * std::sin(a);
    }
  }
  return std::atan2(im, re);
}

TEST_F(PipeWireBackendTest, TimestampsAgreeAcrossRates) {
  Child *target = play({"--freq", "100"});  // 10 ms period: offsets up to +-5 ms are unambiguous
  TargetSpec spec;
  spec.pid = static_cast<uint32_t>(target->pid());
  for (uint32_t rate : {16000u, 44100u, 96000u}) {
    PipeWireBackend reference(test_logger()), other(test_logger());
    const CaptureConfig other_config = config_of(SampleFormat::kF32LE, rate, 2);
    RecordingSink reference_sink(config_of().format), other_sink(other_config.format);
    ASSERT_NO_FATAL_FAILURE(start_capture(reference, spec, reference_sink, config_of()));
    ASSERT_NO_FATAL_FAILURE(start_capture(other, spec, other_sink, other_config));
    capture_with_links(reference, reference_sink, 2, 1.0);
    capture_with_links(other, other_sink, 2, 1.0);
    uint64_t t1;
    {
      std::lock_guard<std::mutex> lock(reference_sink.mutex_);
      t1 = reference_sink.packets_.back().device_ns - 100'000'000;
    }
    const uint64_t t0 = t1 - 500'000'000;
    double d = phase_at(other_sink, 100, t0, t1) - phase_at(reference_sink, 100, t0, t1);
    d = std::remainder(d, 2 * M_PI);
    const double offset_ms = -d / (2 * M_PI * 100) * 1e3;
    std::printf("  %u Hz capture: timestamps %+.3f ms vs the 48 kHz capture\n", rate, offset_ms);
    EXPECT_LT(std::fabs(offset_ms), 0.5) << rate << " Hz";
    reference.close();
    other.close();
  }
}

}  // namespace
