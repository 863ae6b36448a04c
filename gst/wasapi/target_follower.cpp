// SPDX-License-Identifier: LGPL-2.1-or-later
#include "target_follower.h"

#include <algorithm>
#include <vector>

#include "core/monotonic_clock.h"
#include "process_util.h"

namespace procaudio {
namespace wasapi {

TargetFollower::TargetFollower(Logger log, Hooks hooks)
    : log_(std::move(log)),
      hooks_(std::move(hooks)),
      news_(CreateEventW(nullptr, FALSE, FALSE, nullptr)),
      stop_(CreateEventW(nullptr, TRUE, FALSE, nullptr)) {}

TargetFollower::~TargetFollower() {
  close();
}

CaptureError TargetFollower::open(std::shared_ptr<AudioSessionSource> source,
                                  const std::string &name, bool follows) {
  close();
  name_ = name;
  follows_ = follows;
  if (!news_.valid() || !stop_.valid()) {
    return {ErrorKind::kFailed, "Could not create the events that follow the target.",
            "CreateEventW failed: error " + std::to_string(GetLastError())};
  }
  if (!source) {
    return {};
  }
  if (CaptureError error = source->start([this](const SessionEvent &e) { on_session(e); })) {
    if (follows) {
      return error;
    }
    // Only the stream counts need the sessions without following: they stay 0.
    PROCAUDIO_DEBUG(log_, "no audio-session watch, streams are not counted: %s (%s)",
                    error.message.c_str(), error.detail.c_str());
    return {};
  }
  source_ = std::move(source);
  return {};
}

void TargetFollower::close() {
  stop();
  if (source_) {
    source_->stop();  // no session callback after this
    source_.reset();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  live_.clear();
  handed_over_ = false;
}

void TargetFollower::on_session(const SessionEvent &event) {
  PROCAUDIO_LOG(log_, kLog, "audio session of pid %u: %s", event.pid,
                event.state == SessionEvent::State::kActive     ? "active"
                : event.state == SessionEvent::State::kInactive ? "inactive"
                                                                : "expired");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (event.state == SessionEvent::State::kExpired) {
      live_.erase(event.id);
    } else {
      live_[event.id] = event;
    }
  }
  SetEvent(news_.get());
}

void TargetFollower::reset() {
  stop();
  bool handed_over = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::swap(handed_over, handed_over_);
  }
  if (handed_over && follows_) {
    // Restarting that capture would watch a process that is gone and report its exit a second
    // time: it is let go of, and the next start() waits for the next process of the name.
    PROCAUDIO_DEBUG(log_, "the target exited while the capture stopped: waiting for the next one");
    hooks_.detach();
  }
}

void TargetFollower::start(CaptureSink &sink, uint32_t root, uint32_t streams, uint32_t tick_ms) {
  stop();
  if (!follows_ && !source_) {
    return;  // nothing to follow, nothing to count
  }
  // handed_over_ is left as it is: the capture the backend started just before this may
  // already have handed over, and forgetting that would leave the stream with no thread to
  // feed it (reset() forgot what an earlier run left).
  ResetEvent(stop_.get());
  thread_ = std::thread(&TargetFollower::run, this, &sink, root, streams, tick_ms);
}

void TargetFollower::stop() {
  if (thread_.joinable()) {
    SetEvent(stop_.get());
    thread_.join();
  }
}

void TargetFollower::target_exited(CaptureSink &sink, uint32_t pid) {
  PROCAUDIO_INFO(log_, "the target (pid %u) exited%s", pid,
                 follows_ ? ": waiting for the next process named like it" : ": end of capture");
  sink.on_target_state({TargetState::Phase::kExited, pid, 0});
  {
    // Either way this thread stops calling the sink: its stream ended, or it is this
    // thread's now.
    std::lock_guard<std::mutex> lock(mutex_);
    handed_over_ = true;
  }
  SetEvent(news_.get());
  if (!follows_) {
    sink.on_target_exit();
  }
}

uint32_t TargetFollower::streams_of(uint32_t root) {
  std::vector<uint32_t> pids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &entry : live_) {
      pids.push_back(entry.second.pid);
    }
  }
  if (root == 0 || pids.empty()) {
    return 0;
  }
  std::vector<ProcessEntry> processes;
  if (list_processes(processes)) {
    return 0;
  }
  auto parent_of = [&processes](uint32_t pid) -> uint32_t {
    for (const ProcessEntry &p : processes) {
      if (p.pid == pid) {
        return p.parent_pid != pid ? p.parent_pid : 0;
      }
    }
    return 0;
  };
  uint32_t streams = 0;
  for (uint32_t pid : pids) {
    for (int depth = 0; pid != 0 && depth < 64; ++depth, pid = parent_of(pid)) {
      if (pid == root) {
        ++streams;
        break;
      }
    }
  }
  return streams;
}

bool TargetFollower::try_attach(uint32_t &root, uint32_t &streams, CaptureError &error) {
  std::vector<uint32_t> pids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &entry : live_) {
      if (entry.second.pid != 0) {
        pids.push_back(entry.second.pid);
      }
    }
  }
  std::vector<uint32_t> tried;  // roots held (or refused) this time: several sessions share one
  for (uint32_t pid : pids) {
    uint64_t snapshot_time = 0;
    const uint32_t found = find_ancestor_named(pid, name_, &snapshot_time);
    if (found == 0 || std::find(tried.begin(), tried.end(), found) != tried.end()) {
      continue;
    }
    tried.push_back(found);
    if (CaptureError refused = hooks_.hold(found, snapshot_time)) {
      // That process is gone (or its pid was reused), or not this user's to capture: the
      // stream goes on waiting, and a later session (another process of the name) is tried.
      PROCAUDIO_INFO(log_, "process '%s' (pid %u) plays but cannot be held, still waiting: %s (%s)",
                     name_.c_str(), found, refused.message.c_str(), refused.detail.c_str());
      continue;
    }
    const TargetState state{TargetState::Phase::kCapturing, found, streams_of(found)};
    PROCAUDIO_INFO(log_, "process '%s' is playing again as pid %u: capturing it", name_.c_str(),
                   found);
    if (CaptureError failed = hooks_.attach(found, state)) {
      error = failed;  // the audio service refused the capture: the stream ends with why
      return false;
    }
    root = found;
    streams = state.streams;
    return true;
  }
  return false;
}

void TargetFollower::run(CaptureSink *sink, uint32_t root, uint32_t streams, uint32_t tick_ms) {
  bool waiting = root == 0 && follows_;
  if (waiting) {
    sink->on_target_state({TargetState::Phase::kWaiting, 0, 0});
  }
  bool check = waiting;     // a session of the target may be there already
  bool recount = !waiting;  // sessions may have changed since `streams` was counted
  for (;;) {
    if (!waiting && recount) {
      recount = false;
      if (const uint32_t n = streams_of(root); n != streams) {
        PROCAUDIO_DEBUG(log_, "the target (pid %u) has %u audio session(s) now", root, n);
        streams = n;
        hooks_.report({TargetState::Phase::kCapturing, root, n});
      }
    }
    if (waiting && check) {
      check = false;
      CaptureError error;
      if (try_attach(root, streams, error)) {
        waiting = false;
      } else if (error) {
        sink->on_error(error);
        return;
      }
    }
    HANDLE handles[2] = {stop_.get(), news_.get()};
    // While waiting for a process, ticks at the sink's idle deadline (at most tick_ms apart).
    const DWORD wait = WaitForMultipleObjects(
        2, handles, FALSE,
        waiting ? timeout_ms_until(sink->idle_deadline_ns(), monotonic_now_ns(), tick_ms)
                : INFINITE);
    if (wait == WAIT_OBJECT_0 || wait == WAIT_FAILED) {
      return;
    }
    if (waiting) {
      if (const uint64_t now = monotonic_now_ns(); now >= sink->idle_deadline_ns()) {
        sink->on_idle(now);
      }
    }
    if (wait != WAIT_OBJECT_0 + 1) {
      continue;
    }
    bool handed_over = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      std::swap(handed_over, handed_over_);
    }
    if (handed_over && !follows_) {
      return;  // the stream ended with the target: nothing more to count
    }
    if (handed_over) {
      hooks_.detach();  // joins the capture thread: from here on this thread calls the sink
      waiting = true;
      root = 0;
      streams = 0;
      sink->on_target_state({TargetState::Phase::kWaiting, 0, 0});
    }
    check = waiting;
    recount = !waiting;
  }
}

}  // namespace wasapi
}  // namespace procaudio
