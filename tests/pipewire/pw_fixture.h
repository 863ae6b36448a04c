// SPDX-License-Identifier: LGPL-2.1-or-later
// What the PipeWireBackend tests share. PipeWireBackendTest gives each test a private,
// headless PipeWire + WirePlumber (+ pipewire-pulse), started with scripts/pipewire-session.sh
// before the test and stopped after it, with this process's environment pointed at it. Real
// processes (tone_player through play(), paplay through a Child) play known tones; a
// RecordingSink keeps what the backend delivers, so that a test can assert what a user would
// hear: which frequencies are in the capture and at what level (Goertzel), the packets'
// timestamps, and the callbacks. No GStreamer. Every wait is on a condition with a bounded
// timeout.
//
// Environment: PROCAUDIO_TEST_LOG=N prints the backend's log up to level N (0 error .. 5
// trace); PROCAUDIO_TEST_DUMP_PACKETS=1 prints every packet's timing;
// PROCAUDIO_PW_LONG_SECONDS sets LongCaptureStaysContinuous's duration (default 60).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/capture_backend.h"
#include "core/logger.h"
#include "core/monotonic_clock.h"
#include "pipewire/pipewire_backend.h"
#include "pw_signal.h"

// A named namespace, not an anonymous one: every test file's TEST_F(PipeWireBackendTest, ...)
// must see one and the same fixture class, or GoogleTest refuses to run the suite.
namespace procaudio {
namespace pwtest {

using pipewire::PipeWireBackend;

constexpr double kPlayedAmplitude = 0.5;  // tone_player's default: -6.02 dBFS
constexpr double kAbsentDb = -80.0;       // "not there"
constexpr double kLevelToleranceDb = 10.0;

inline double db(double amplitude) {
  return 20.0 * std::log10(std::max(amplitude, 1e-12));
}

// Waits up to `timeout_ms` for `fd` to become readable.
bool wait_readable(int fd, int timeout_ms);

// A pidfd for `pid` (readable once the process exits), or -1.
int pidfd_open(pid_t pid);

// ------------------------------------------------------------------------------------------
// A private PipeWire session for one test.

class Session {
 public:
  // `dir`: the session's directory (a new one when empty); the same directory again gives
  // the same socket path.
  bool start(bool pulse, std::string *why, const std::string &dir = "");

  // Stops the daemons and restores the environment that start() changed.
  void stop();

  // The pid of the session's daemon `name` (pipewire, wireplumber, ...), or 0.
  pid_t daemon_pid(const std::string &name) const;

  const std::string &dir() const { return dir_; }

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
  std::map<std::string, std::pair<bool, std::string>> saved_;
};

// The number of this process's threads named `name` (the backend's PipeWire thread loop is
// "procaudio-pw") once it is `expected`, or after `timeout_ms`: a joined thread can stay
// listed in /proc/self/task for a moment after pthread_join returned.
int settled_thread_count(const std::string &name, int expected, int timeout_ms = 1000);

// ------------------------------------------------------------------------------------------
// A process this test starts (tone_player, paplay), with its stdout read line by line.

class Child {
 public:
  Child() = default;
  ~Child() { stop(); }

  bool spawn(const std::vector<std::string> &argv);

  // Waits until `count` lines containing `needle` have been printed.
  bool wait_for_lines(const std::string &needle, size_t count, int timeout_ms);

  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

  // The pid printed on the first line containing `role=R`.
  pid_t pid_of_role(const std::string &role);

  pid_t pid() const { return pid_; }

  // Ends the process (SIGTERM, then SIGKILL if it lingers), reaps it and joins the reader.
  void stop();

  // The caller reaped it (waitpid) itself.
  void forget_pid() { pid_ = 0; }

 private:
  pid_t pid_ = 0;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

// tone_player's argv with these arguments.
std::vector<std::string> tone_args(const std::vector<std::string> &extra);

// ------------------------------------------------------------------------------------------
// The sink: records everything, checks that calls never overlap.

struct PacketRecord {
  uint32_t frames;
  uint32_t flags;
  uint64_t device_ns;
  uint64_t arrival_ns;
  uint64_t first_frame;  // index of its first frame in `samples`
};

class RecordingSink : public CaptureSink {
 public:
  explicit RecordingSink(const AudioFormat &format, double reserve_seconds = 10) : format_(format) {
    samples_.reserve(static_cast<size_t>(reserve_seconds * format.rate * format.channels));
  }

  void on_packet(const Packet &packet) override;
  void on_idle(uint64_t now_ns) override;
  void on_target_exit() override;
  void on_error(const CaptureError &error) override;
  void on_target_state(const TargetState &state) override;
  // A tick once kQuietNs passed since the last packet or tick, as an engine would want.
  uint64_t idle_deadline_ns() const override { return last_activity_ns_.load() + kQuietNs; }
  static constexpr uint64_t kQuietNs = 50'000'000;

  std::vector<TargetState> states() {
    std::lock_guard<std::mutex> lock(mutex_);
    return states_;
  }

  bool wait(const std::function<bool()> &done, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), done);
  }
  // The number of frames captured so far: the index the next frame will have.
  size_t mark() {
    std::lock_guard<std::mutex> lock(mutex_);
    return samples_.size() / format_.channels;
  }
  // Waits until mark() reaches `frame_index`.
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
  double tone_db(double freq, size_t begin, size_t count, uint32_t ch = 0);

  // A glitch on channel 0 inside a tone of `freq` at kPlayedAmplitude: a run of 32+ near-zero
  // samples (a cycle that lost its data), or a step between two samples further than that sine
  // can make (a repeat, a splice, a dropout's edge). Either splatters over every frequency.
  bool has_glitch(size_t begin, size_t count, double freq);

  // The first frame with a non-zero sample, or the frame count if there is none.
  size_t first_sound();

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
  // The timing of the packets from `from_packet` on; PROCAUDIO_TEST_DUMP_PACKETS=1 also
  // prints each of them.
  Timing timing(size_t from_packet = 0);

  size_t packet_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return packets_.size();
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  AudioFormat format_;
  std::vector<float> samples_;
  std::vector<PacketRecord> packets_;
  std::vector<TargetState> states_;
  bool stopped_ = false;
  bool exited_ = false;
  bool errored_ = false;
  int exits_ = 0;
  int errors_ = 0;
  int idles_ = 0;
  // The shortest time between a packet and an on_idle after it: at least the idle margin,
  // else on_idle came while packets flowed.
  uint64_t quietest_idle_ns_ = UINT64_MAX;
  std::atomic<uint64_t> last_activity_ns_{monotonic_now_ns()};
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

// Phase of a tone against absolute device time: captures at other rates (resampled by
// PipeWire) must carry the same timestamps as the 48 kHz one, to well under a millisecond.
double phase_at(RecordingSink &sink, double freq, uint64_t t0, uint64_t t1);

// The backend's log on stderr up to the level PROCAUDIO_TEST_LOG names; none when unset.
Logger test_logger();

CaptureConfig config_of(SampleFormat format = SampleFormat::kF32LE, uint32_t rate = 48000,
                        uint32_t channels = 2);

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

  void stop_children();

  // SIGKILLs the session's PipeWire daemon (checked to be it); `killed_ns`: when.
  void kill_daemon(uint64_t *killed_ns);

  // The sink got on_error(kDeviceLost) within 2 s of `killed_ns`.
  void expect_lost_within_2s(RecordingSink &sink, uint64_t killed_ns);

  // Starts tone_player with these arguments and waits until `streams` of its streams run.
  Child *play(const std::vector<std::string> &args, size_t streams = 1);

  // Opens and starts `backend` on `target`; fails the test on error.
  void start_capture(PipeWireBackend &backend, const TargetSpec &target, RecordingSink &sink,
                     const CaptureConfig &config);

  // Waits until `links` links are up, then for `seconds` of audio after that; returns the
  // index of the first frame captured with the links up (plus a settling margin).
  size_t capture_with_links(PipeWireBackend &backend, RecordingSink &sink, uint32_t links,
                            double seconds);

  // Every channel holds the tone `freq` within kLevelToleranceDb of tone_player's level.
  void expect_tone(RecordingSink &sink, double freq, size_t begin, size_t count, const char *what);

  // No channel holds the tone `freq` above kAbsentDb.
  void expect_absent(RecordingSink &sink, double freq, size_t begin, size_t count,
                     const char *what);

  // The packets after the first are many, continuous in device time (rare slipped cycles
  // aside), close to their arrival and without discontinuity or timestamp-error flags; the
  // sink's calls never overlapped.
  void expect_timing(RecordingSink &sink, const char *what);

  // A sink that outlives every backend of the test (they are the test's locals, closed
  // before the fixture goes): a backend's data loop may call its sink until it is closed.
  RecordingSink &new_sink(const AudioFormat &format, double reserve_seconds = 10) {
    sinks_.push_back(std::make_unique<RecordingSink>(format, reserve_seconds));
    return *sinks_.back();
  }

  Session session_;
  std::vector<std::unique_ptr<Child>> children_;
  std::vector<std::unique_ptr<RecordingSink>> sinks_;
};

}  // namespace pwtest
}  // namespace procaudio
