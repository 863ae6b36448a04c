// SPDX-License-Identifier: LGPL-2.1-or-later
// tone_player: a real PipeWire client for the end-to-end tests. Plays sine tones through
// native pw_streams that the session manager links to the default sink, like any application.
//
//   tone_player [--freq F[,F2,...]] [--seconds S|forever] [--amplitude A] [--streams N]
//               [--child F] [--grandchild F] [--child-seconds S] [--start-delay MS]
//               [--name NAME] [--claim-pid P]
//
//   --freq        tone of stream i is F[i % count] Hz (default 440)
//   --seconds     how long to play, then exit 0 (default forever; SIGTERM/SIGINT end it too)
//   --amplitude   peak amplitude, 0..1 (default 0.5, i.e. -6 dBFS)
//   --streams     number of playback streams (default 1; 0: play nothing, just live).
//                 Even streams are 48000 Hz stereo, odd ones 44100 Hz mono.
//   --child F     fork a child process that plays F Hz (0: plays nothing) for as long
//   --grandchild F  the child forks a grandchild that plays F Hz (implies --child 0)
//   --child-seconds how long the child (and grandchild) play (default: as --seconds)
//   --start-delay wait this long before opening the streams (a late-starting target)
//   --name        node.name / application.name of the streams (default tone_player)
//   --claim-pid   say application.process.id=P on the streams: a client that lies about
//                 whose it is (the kernel's pid, on its Client, says otherwise)
//
// Prints one line per event on stdout, flushed: "pid=P role=R streaming stream=I freq=F t=NS"
// when a stream starts running, "pid=P role=R exit t=NS frames=N" before exiting (NS:
// CLOCK_MONOTONIC; N: the frames stream 0 handed to the graph).
// SIGUSR1 pauses the streams (pw_stream_set_active(false)), SIGUSR2 resumes them; each prints
// "pid=P role=R paused|resumed t=NS".
// Children die with their parent (PR_SET_PDEATHSIG).
#include <pipewire/pipewire.h>
#include <signal.h>
#include <spa/param/audio/format-utils.h>
#include <spa/utils/result.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct Options {
  std::vector<double> freqs{440.0};
  double seconds = -1;  // forever
  double amplitude = 0.5;
  int streams = 1;
  bool child = false;
  double child_freq = 0;
  bool grandchild = false;
  double grandchild_freq = 0;
  double child_seconds = -2;  // -2: as `seconds`
  int start_delay_ms = 0;
  std::string name = "tone_player";
  std::string claim_pid;  // "": the truth
};

const char *g_role = "main";

struct Player;

struct Stream {
  Player *player = nullptr;
  int index = 0;
  double freq = 440;
  uint32_t rate = 48000;
  uint32_t channels = 2;
  double phase = 0;
  pw_stream *stream = nullptr;
  bool announced = false;
  std::atomic<uint64_t> frames_played{0};  // written on the data thread
};

struct Player {
  pw_main_loop *loop = nullptr;
  double amplitude = 0.5;
  std::vector<Stream *> streams;
};

void on_process(void *data) {
  auto *s = static_cast<Stream *>(data);
  pw_buffer *b = pw_stream_dequeue_buffer(s->stream);
  if (b == nullptr) {
    return;
  }
  spa_data &d = b->buffer->datas[0];
  auto *out = static_cast<float *>(d.data);
  if (out == nullptr) {
    return;
  }
  const uint32_t stride = sizeof(float) * s->channels;
  uint32_t frames = d.maxsize / stride;
  if (b->requested != 0 && b->requested < frames) {
    frames = static_cast<uint32_t>(b->requested);
  }
  const double step = 2.0 * M_PI * s->freq / s->rate;
  for (uint32_t i = 0; i < frames; ++i) {
    const float v = static_cast<float>(s->player->amplitude * std::sin(s->phase));
    s->phase += step;
    if (s->phase >= 2.0 * M_PI) {
      s->phase -= 2.0 * M_PI;
    }
    for (uint32_t c = 0; c < s->channels; ++c) {
      out[i * s->channels + c] = v;
    }
  }
  d.chunk->offset = 0;
  d.chunk->stride = static_cast<int32_t>(stride);
  d.chunk->size = frames * stride;
  pw_stream_queue_buffer(s->stream, b);
  s->frames_played.fetch_add(frames, std::memory_order_relaxed);
}

void on_state(void *data, pw_stream_state old, pw_stream_state state, const char *error) {
  auto *s = static_cast<Stream *>(data);
  if (state == PW_STREAM_STATE_STREAMING && !s->announced) {
    s->announced = true;
    std::printf("pid=%d role=%s streaming stream=%d freq=%g t=%llu\n", getpid(), g_role, s->index,
                s->freq, static_cast<unsigned long long>(now_ns()));
    std::fflush(stdout);
  } else if (state == PW_STREAM_STATE_ERROR) {
    std::fprintf(stderr, "tone_player %d: stream %d error: %s\n", getpid(), s->index,
                 error ? error : "?");
    pw_main_loop_quit(s->player->loop);
  }
}

void on_quit_signal(void *data, int signal_number) {
  pw_main_loop_quit(static_cast<Player *>(data)->loop);
}

// SIGUSR1 pauses every stream, SIGUSR2 plays them again: what a player's pause button does
// (pw_stream_set_active), so the stream's node leaves and re-enters the RUNNING state while
// the process stays. Says so on stdout once asked (the node follows within a cycle or two).
void on_pause_signal(void *data, int signal_number) {
  auto *player = static_cast<Player *>(data);
  const bool active = signal_number == SIGUSR2;
  for (Stream *s : player->streams) {
    pw_stream_set_active(s->stream, active);
  }
  std::printf("pid=%d role=%s %s t=%llu\n", getpid(), g_role, active ? "resumed" : "paused",
              static_cast<unsigned long long>(now_ns()));
  std::fflush(stdout);
}

void on_timeout(void *data, uint64_t expirations) {
  pw_main_loop_quit(static_cast<Player *>(data)->loop);
}

// Plays until the timeout or a signal; `frames_played`: stream 0's frames (0 without streams).
int play(const Options &opt, const std::vector<double> &freqs, int n_streams,
         uint64_t &frames_played) {
  frames_played = 0;
  pw_init(nullptr, nullptr);
  Player player;
  player.amplitude = opt.amplitude;
  player.loop = pw_main_loop_new(nullptr);
  if (player.loop == nullptr) {
    std::fprintf(stderr, "tone_player: pw_main_loop_new failed\n");
    return 1;
  }
  pw_loop *loop = pw_main_loop_get_loop(player.loop);
  pw_loop_add_signal(loop, SIGINT, on_quit_signal, &player);
  pw_loop_add_signal(loop, SIGTERM, on_quit_signal, &player);
  pw_loop_add_signal(loop, SIGUSR1, on_pause_signal, &player);
  pw_loop_add_signal(loop, SIGUSR2, on_pause_signal, &player);
  if (opt.seconds >= 0) {
    spa_source *timer = pw_loop_add_timer(loop, on_timeout, &player);
    struct timespec value;
    value.tv_sec = static_cast<time_t>(opt.seconds);
    value.tv_nsec = static_cast<long>((opt.seconds - static_cast<double>(value.tv_sec)) * 1e9);
    if (value.tv_sec == 0 && value.tv_nsec == 0) {
      value.tv_nsec = 1;
    }
    pw_loop_update_timer(loop, timer, &value, nullptr, false);
  }
  static const pw_stream_events events = [] {
    pw_stream_events e{};
    e.version = PW_VERSION_STREAM_EVENTS;
    e.process = on_process;
    e.state_changed = on_state;
    return e;
  }();
  for (int i = 0; i < n_streams; ++i) {
    auto *s = new Stream();
    s->player = &player;
    s->index = i;
    s->freq = freqs[static_cast<size_t>(i) % freqs.size()];
    s->rate = i % 2 == 0 ? 48000 : 44100;
    s->channels = i % 2 == 0 ? 2 : 1;
    const std::string node_name = opt.name + "-" + std::to_string(i);
    pw_properties *props = pw_properties_new(
        PW_KEY_MEDIA_TYPE, "Audio", PW_KEY_MEDIA_CATEGORY, "Playback", PW_KEY_MEDIA_ROLE, "Music",
        PW_KEY_APP_NAME, opt.name.c_str(), PW_KEY_NODE_NAME, node_name.c_str(), nullptr);
    if (!opt.claim_pid.empty()) {
      pw_properties_set(props, PW_KEY_APP_PROCESS_ID, opt.claim_pid.c_str());
    }
    s->stream = pw_stream_new_simple(loop, node_name.c_str(), props, &events, s);
    uint8_t pod[1024];
    spa_pod_builder b;
    spa_pod_builder_init(&b, pod, sizeof pod);
    spa_audio_info_raw info;
    std::memset(&info, 0, sizeof info);
    info.format = SPA_AUDIO_FORMAT_F32;
    info.rate = s->rate;
    info.channels = s->channels;
    if (s->channels == 2) {
      info.position[0] = SPA_AUDIO_CHANNEL_FL;
      info.position[1] = SPA_AUDIO_CHANNEL_FR;
    } else {
      info.position[0] = SPA_AUDIO_CHANNEL_MONO;
    }
    const spa_pod *params[1] = {spa_format_audio_raw_build(&b, SPA_PARAM_EnumFormat, &info)};
    const int res = pw_stream_connect(
        s->stream, PW_DIRECTION_OUTPUT, PW_ID_ANY,
        static_cast<pw_stream_flags>(PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS |
                                     PW_STREAM_FLAG_RT_PROCESS),
        params, 1);
    if (res < 0) {
      std::fprintf(stderr, "tone_player: pw_stream_connect: %s\n", spa_strerror(res));
      return 1;
    }
    player.streams.push_back(s);
  }
  pw_main_loop_run(player.loop);
  for (Stream *s : player.streams) {
    pw_stream_destroy(s->stream);
    if (s->index == 0) {
      frames_played = s->frames_played.load();
    }
    delete s;
  }
  pw_main_loop_destroy(player.loop);
  return 0;
}

bool parse_args(int argc, char **argv, Options *opt) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (value == nullptr) {
      return false;
    }
    ++i;
    if (arg == "--freq") {
      opt->freqs.clear();
      std::string list = value;
      size_t pos = 0;
      while (pos <= list.size()) {
        const size_t comma = list.find(',', pos);
        opt->freqs.push_back(std::atof(list.substr(pos, comma - pos).c_str()));
        if (comma == std::string::npos) {
          break;
        }
        pos = comma + 1;
      }
    } else if (arg == "--seconds") {
      opt->seconds = std::strcmp(value, "forever") == 0 ? -1 : std::atof(value);
    } else if (arg == "--amplitude") {
      opt->amplitude = std::atof(value);
    } else if (arg == "--streams") {
      opt->streams = std::atoi(value);
    } else if (arg == "--child") {
      opt->child = true;
      opt->child_freq = std::atof(value);
    } else if (arg == "--grandchild") {
      opt->child = true;
      opt->grandchild = true;
      opt->grandchild_freq = std::atof(value);
    } else if (arg == "--child-seconds") {
      opt->child_seconds = std::strcmp(value, "forever") == 0 ? -1 : std::atof(value);
    } else if (arg == "--start-delay") {
      opt->start_delay_ms = std::atoi(value);
    } else if (arg == "--name") {
      opt->name = value;
    } else if (arg == "--claim-pid") {
      opt->claim_pid = value;
    } else {
      return false;
    }
  }
  return !opt->freqs.empty();
}

// Forks a process that plays `freq` (nothing if 0) and returns its pid in the parent; the
// child never returns. With `with_grandchild` the child first forks a grandchild that plays.
pid_t spawn(const Options &opt, const char *role, double freq, bool with_grandchild) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) {
    return pid;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) {
    _exit(0);  // the parent died before prctl
  }
  g_role = role;
  pid_t grandchild = 0;
  if (with_grandchild) {
    grandchild = spawn(opt, "grandchild", opt.grandchild_freq, false);
  }
  Options child_opt = opt;
  child_opt.name = opt.name + "-" + role;
  if (opt.child_seconds != -2) {
    child_opt.seconds = opt.child_seconds;
  }
  uint64_t frames = 0;
  const int rc = play(child_opt, {freq}, freq > 0 ? 1 : 0, frames);
  std::printf("pid=%d role=%s exit t=%llu frames=%llu\n", getpid(), role,
              static_cast<unsigned long long>(now_ns()), static_cast<unsigned long long>(frames));
  std::fflush(stdout);
  if (grandchild > 0) {
    kill(grandchild, SIGTERM);
    waitpid(grandchild, nullptr, 0);
  }
  _exit(rc);
}

}  // namespace

int main(int argc, char **argv) {
  Options opt;
  if (!parse_args(argc, argv, &opt)) {
    std::fprintf(
        stderr,
        "usage: %s [--freq F[,F2..]] [--seconds S|forever] [--amplitude A] "
        "[--streams N] [--child F] [--grandchild F] [--child-seconds S] [--start-delay MS] "
        "[--name NAME] [--claim-pid P]\n",
        argv[0]);
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  pid_t child = 0;
  if (opt.child) {
    child = spawn(opt, "child", opt.child_freq, opt.grandchild);
  }
  if (opt.start_delay_ms > 0) {
    usleep(static_cast<useconds_t>(opt.start_delay_ms) * 1000);
  }
  uint64_t frames = 0;
  const int rc = play(opt, opt.freqs, opt.streams, frames);
  std::printf("pid=%d role=main exit t=%llu frames=%llu\n", getpid(),
              static_cast<unsigned long long>(now_ns()), static_cast<unsigned long long>(frames));
  std::fflush(stdout);
  if (child > 0) {
    kill(child, SIGTERM);
    waitpid(child, nullptr, 0);
  }
  return rc;
}
