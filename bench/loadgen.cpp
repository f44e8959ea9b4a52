// sidewire_loadgen: opens N Socket.IO (Engine.IO 4 over WebSocket) or raw WebSocket clients,
// joins them to a room, and measures what the server does for them: connect time, RSS per
// connection, deliveries per second and per server CPU-second (from /proc/<pid>), latency.
// --threads N Asio threads (default 2), the clients dealt among them, so that the generator is
// not the bottleneck; frames are parsed in place and client frames carry a zero mask key (valid,
// and nothing to XOR). Its own CPU over the measured window is reported (loadgen_cpu_s).
//
// --rooms K: receiver i joins room <room>-<i mod K> (K = 1: just <room>), and message n goes to
// room n mod K (Socket.IO: the room is in the publish event; raw WebSocket: one publisher per
// room, K ≤ 100). --rate R: the publisher sends R messages/s (open loop, still at most --window
// in flight); 0 = as fast as the window allows.
//
// --scenario cluster: the fan-out over two nodes of a fleet. Receivers alternate between
// --port (node A) and --port-b (node B), the publisher talks to A; CPU is read for both server
// processes (and --redis-pid), per thread too; every receiver checks that it got each message
// once; after the window the publisher stops and the messages in flight drain.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 3000;
  std::string protocol = "sio";  // sio | ws
  std::string path;              // default by protocol
  std::string scenario = "fanout";
  int clients = 1000;
  std::string room = "bench";
  int server_pid = 0;
  double duration_s = 10;
  int window = 20;
  int payload = 100;
  int concurrency = 1000;
  int settle_ms = 1500;
  int idle_ms = 0;  // idle: how long the connections sit before the final RSS reading
  std::string gc_path = "/gc";
  int warmup = 0;  // idle: connect and drop the clients this many times before measuring
  // cluster
  int port_b = 0;
  int server_pid_b = 0;
  int redis_pid = 0;
  int drain_ms = 3000;
  int threads = 2;
  int rooms = 1;
  double rate = 0;  // messages/s, 0 = closed loop (window)
  std::string stats_path;  // idle: GET this from the server with the final RSS reading (its JSON in "stats")
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

long read_rss_kb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double read_cpu_s(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(all.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Every thread of `pid`: tid -> (name, utime + stime in ticks). The main thread is named "main"
// (its comm is the executable's, as is that of every thread that never named itself).
std::map<int, std::pair<std::string, long>> read_threads(int pid) {
  std::map<int, std::pair<std::string, long>> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int tid = std::atoi(e->d_name);
    std::ifstream f(dir + "/" + e->d_name + "/stat");
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto open = all.find('('), close = all.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    std::string name = tid == pid ? "main" : all.substr(open + 1, close - open - 1);
    for (char& ch : name) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != ' ' && ch != '.') ch = '_';
    }
    std::istringstream rest(all.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stol(field);
      if (i == 15) stime = std::stol(field);
    }
    out[tid] = {name, utime + stime};
  }
  ::closedir(d);
  return out;
}

// CPU-seconds per thread name between two readings (threads of one name summed), as JSON.
std::string threads_json(const std::map<int, std::pair<std::string, long>>& before,
                         const std::map<int, std::pair<std::string, long>>& after) {
  std::map<std::string, long> by_name;
  for (const auto& [tid, v] : after) {
    const auto it = before.find(tid);
    by_name[v.first] += v.second - (it == before.end() ? 0 : it->second.second);
  }
  std::ostringstream o;
  o << "{";
  bool first = true;
  for (const auto& [name, ticks] : by_name) {
    char s[64];
    std::snprintf(s, sizeof s, "%.2f", static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK)));
    o << (first ? "" : ",") << "\"" << name << "\":" << s;
    first = false;
  }
  o << "}";
  return o.str();
}

// A client frame: FIN, opcode, masked with a zero key.
std::string client_frame(std::uint8_t opcode, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF));
  }
  f.append(4, '\0');
  f.append(payload);
  return f;
}

class Bench;

// One Asio thread and the clients it serves.
struct Shard {
  explicit Shard(int i) : index(i), guard(asio::make_work_guard(io)) {}
  int index;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::thread thread;
  std::vector<std::shared_ptr<class Client>> clients;
  int started = 0;     // clients of this shard created
  int connecting = 0;  // created and not yet joined or failed
  int quota = 0;       // clients this shard opens
  int concurrency = 0;
  std::vector<std::uint32_t> latencies_us;
  std::vector<std::uint32_t> latencies_node_us[2];
  std::uint64_t deliveries = 0;
  std::uint64_t deliveries_node[2] = {0, 0};

  // Runs f on this shard's thread and waits for it.
  template <typename F>
  void run_sync(F f) {
    std::promise<void> done;
    asio::post(io, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(Bench& bench, Shard& shard, bool publisher, int node = 0, int room = 0)
      : bench_(bench), shard_(shard), sock_(shard.io), publisher_(publisher), node_(node), room_(room) {}
  void start(const tcp::endpoint& ep);
  void send_text(std::string_view payload) { write(client_frame(0x1, payload)); }
  bool joined() const { return joined_; }
  void close() {
    boost::system::error_code ec;
    sock_.close(ec);
  }
  int node() const { return node_; }
  int room() const { return room_; }
  Shard& shard() { return shard_; }

  // cluster: which messages this receiver got (each exactly once, in order, is the expectation)
  void saw(std::uint64_t n) {
    if (n >= seen_.size()) seen_.resize(std::max<std::size_t>(n + 1, seen_.size() * 2), false);
    if (seen_[n]) {
      ++duplicates_;
      return;
    }
    seen_[n] = true;
    ++unique_;
    if (n + 1 < next_) ++reordered_;
    next_ = std::max(next_, n + 1);
  }
  std::uint64_t unique() const { return unique_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t reordered() const { return reordered_; }

 private:
  void write(std::string frame);
  void do_write();
  void read();
  void on_data(std::size_t n);
  void on_message(std::string_view text);
  void fail(const std::string& why);

  Bench& bench_;
  Shard& shard_;
  tcp::socket sock_;
  bool publisher_;
  int node_;  // cluster: 0 = node A (--port), 1 = node B (--port-b)
  int room_;  // index of the room it joins (--rooms)
  std::vector<bool> seen_;
  std::uint64_t next_ = 0, unique_ = 0, duplicates_ = 0, reordered_ = 0;
  bool upgraded_ = false;
  bool joined_ = false;
  bool failed_ = false;
  std::vector<char> buf_ = std::vector<char>(8192);
  std::size_t have_ = 0;
  std::deque<std::string> out_;
  bool writing_ = false;
};

class Bench {
 public:
  // Messages in flight are tracked in a ring of counters (receivers still to get message n at
  // n mod kRing): far more slots than any window, so a slot is free again long before reuse.
  static constexpr std::size_t kRing = 1 << 16;

  explicit Bench(Options o) : opt(std::move(o)), ring(new std::atomic<int>[kRing]) {
    if (opt.path.empty()) opt.path = opt.protocol == "sio" ? "/socket.io/" : "/ws/bench";
    opt.threads = std::clamp(opt.threads, 1, 64);
    opt.rooms = std::max(1, opt.rooms);
    opt.window = std::clamp(opt.window, 1, static_cast<int>(kRing / 4));
    if (opt.protocol == "ws" && opt.rooms > 100) {
      std::cerr << "--rooms: at most 100 with --protocol ws (one publisher per room)\n";
      std::exit(2);
    }
    asio::io_context tmp;
    tcp::resolver r(tmp);
    endpoint = *r.resolve(opt.host, std::to_string(opt.port)).begin();
    cluster = opt.scenario == "cluster";
    if (cluster) {
      if (opt.port_b <= 0) {
        std::cerr << "--scenario cluster needs --port-b\n";
        std::exit(2);
      }
      endpoint_b = *r.resolve(opt.host, std::to_string(opt.port_b)).begin();
    }
    for (std::size_t i = 0; i < kRing; ++i) ring[i].store(0);
    payload_pad.assign(static_cast<std::size_t>(std::max(0, opt.payload)), 'x');
    members.assign(static_cast<std::size_t>(opt.rooms), 0);
    for (int i = 0; i < opt.clients; ++i) ++members[static_cast<std::size_t>(i % opt.rooms)];
    for (int i = 0; i < opt.threads; ++i) shards.push_back(std::make_unique<Shard>(i));
    for (auto& sh : shards) {
      sh->thread = std::thread([s = sh.get()] {
        for (;;) {
          try {
            s->io.run();
            return;
          } catch (const std::exception& e) {
            std::cerr << "loadgen thread: " << e.what() << "\n";
          }
        }
      });
    }
  }

  ~Bench() {
    for (auto& sh : shards) {
      sh->guard.reset();
      sh->io.stop();
    }
    for (auto& sh : shards) sh->thread.join();
  }

  Options opt;
  std::unique_ptr<std::atomic<int>[]> ring;
  tcp::endpoint endpoint;
  tcp::endpoint endpoint_b;  // cluster: node B
  bool cluster = false;
  std::vector<std::unique_ptr<Shard>> shards;
  std::vector<int> members;  // receivers per room
  std::vector<std::shared_ptr<Client>> publishers;  // on shard 0: one (sio), one per room (ws)
  std::atomic<int> joined{0};
  std::atomic<int> errors{0};
  Clock::time_point connect_start;
  std::atomic<double> connect_ms{-1};

  // fan-out bookkeeping
  std::atomic<bool> measuring{false};
  std::uint64_t seq = 0;                  // next message number (shard 0)
  std::atomic<std::uint64_t> completed{0};  // messages every receiver got
  std::atomic<bool> publish_posted{false};
  std::atomic<bool> publishing{true};  // cluster: false while the messages in flight drain
  std::string payload_pad;
  std::atomic<std::int64_t> last_progress_ns{0};
  std::int64_t rate_start_ns = 0;  // --rate: when sending began (shard 0)
  std::uint64_t rate_base = 0;      // seq then
  std::uint64_t rate_skipped = 0;   // messages the rate asked for while the window was full
  std::unique_ptr<asio::steady_timer> rate_timer;

  std::string request_target(int room) const {
    if (opt.protocol == "sio") return opt.path + "?EIO=4&transport=websocket";
    return opt.path + "?room=" + room_name(room);
  }
  std::string room_name(int room) const { return opt.rooms == 1 ? opt.room : opt.room + "-" + std::to_string(room); }

  // Deals the clients among the shards and starts connecting (each shard `concurrency` at once).
  void connect_all() {
    connect_start = Clock::now();
    const int t = static_cast<int>(shards.size());
    for (auto& sh : shards) {
      sh->quota = opt.clients / t + (sh->index < opt.clients % t ? 1 : 0);
      sh->concurrency = std::max(1, opt.concurrency / t);
      asio::post(sh->io, [this, s = sh.get()] { connect_more(*s); });
    }
  }

  void connect_more(Shard& sh) {
    while (sh.started < sh.quota && sh.connecting < sh.concurrency) {
      const int global = sh.index + sh.started * static_cast<int>(shards.size());
      const int node = cluster ? global % 2 : 0;  // cluster: half on A, half on B
      auto c = std::make_shared<Client>(*this, sh, false, node, global % opt.rooms);
      sh.clients.push_back(c);
      ++sh.started;
      ++sh.connecting;
      c->start(node ? endpoint_b : endpoint);
    }
  }

  void on_joined(Client& c, bool publisher_client) {
    if (publisher_client) return;
    if (joined.fetch_add(1) + 1 == opt.clients) {
      connect_ms = std::chrono::duration<double, std::milli>(Clock::now() - connect_start).count();
    }
    --c.shard().connecting;
    connect_more(c.shard());
  }

  void on_failed(Client& c, bool counted) {
    ++errors;
    if (counted) {
      --c.shard().connecting;
      connect_more(c.shard());
    }
  }

  bool publishers_ready() const {
    if (publishers.empty()) return false;
    for (const auto& p : publishers) {
      if (!p->joined()) return false;
    }
    return true;
  }

  // Shard 0.
  void send_one() {
    std::string body = "t=" + std::to_string(now_ns()) + ";s=" + std::to_string(seq) + ";";
    if (body.size() < payload_pad.size()) body.append(payload_pad, 0, payload_pad.size() - body.size());
    const int room = static_cast<int>(seq % static_cast<std::uint64_t>(opt.rooms));
    ring[seq % kRing].store(members[static_cast<std::size_t>(room)], std::memory_order_relaxed);
    ++seq;
    if (opt.protocol == "sio") {
      publishers[0]->send_text("42[\"publish\",\"" + room_name(room) + "\",\"" + body + "\"]");
    } else {
      publishers[static_cast<std::size_t>(room)]->send_text(body);
    }
  }

  // Shard 0: closed loop (window) or, with --rate, the rate's due messages within the window.
  void publish_more() {
    publish_posted = false;
    if (!publishers_ready() || !publishing) return;
    const auto window = static_cast<std::uint64_t>(opt.window);
    if (opt.rate <= 0) {
      while (seq - completed.load() < window) send_one();
      return;
    }
    const double due_f = static_cast<double>(now_ns() - rate_start_ns) / 1e9 * opt.rate;
    // What the rate asks for by now, less what was skipped: a full window's shortfall is
    // dropped, not sent later in a burst.
    const std::uint64_t due = rate_base + static_cast<std::uint64_t>(due_f) - rate_skipped;
    while (seq < due && seq - completed.load() < window) send_one();
    if (seq < due) rate_skipped += due - seq;
  }

  void start_publishing() {
    auto& sh0 = *shards[0];
    sh0.run_sync([&] {
      if (opt.protocol == "sio") {
        publishers.push_back(std::make_shared<Client>(*this, sh0, true));
        publishers.back()->start(endpoint);
      } else {
        for (int r = 0; r < opt.rooms; ++r) {
          publishers.push_back(std::make_shared<Client>(*this, sh0, true, 0, r));
          publishers.back()->start(endpoint);
        }
      }
      rate_start_ns = now_ns();
      if (opt.rate > 0) {
        rate_timer = std::make_unique<asio::steady_timer>(sh0.io);
        tick_rate();
      }
    });
    last_progress_ns = now_ns();
  }

  void tick_rate() {
    rate_timer->expires_after(std::chrono::milliseconds(1));
    rate_timer->async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      publish_more();
      tick_rate();
    });
  }

  // Any shard: a receiver got message n.
  void on_delivery(Client& c, std::string_view body) {
    const auto t = body.find("t=");
    const auto s = body.find(";s=");
    if (t == std::string_view::npos || s == std::string_view::npos) return;
    const std::int64_t sent = std::strtoll(body.data() + t + 2, nullptr, 10);
    const std::uint64_t n = std::strtoull(body.data() + s + 3, nullptr, 10);
    if (cluster) c.saw(n);
    Shard& sh = c.shard();
    if (measuring.load(std::memory_order_relaxed)) {
      ++sh.deliveries;
      const auto us = static_cast<std::uint32_t>(std::max<std::int64_t>(0, (now_ns() - sent) / 1000));
      sh.latencies_us.push_back(us);
      if (cluster) {
        ++sh.deliveries_node[c.node()];
        sh.latencies_node_us[c.node()].push_back(us);
      }
    }
    if (ring[n % kRing].fetch_sub(1, std::memory_order_acq_rel) == 1) {
      completed.fetch_add(1);
      last_progress_ns.store(now_ns(), std::memory_order_relaxed);
      if (sh.index == 0) {
        publish_more();
      } else if (!publish_posted.exchange(true)) {
        asio::post(shards[0]->io, [this] { publish_more(); });
      }
    }
  }

  std::uint64_t seq_snapshot() const {
    std::uint64_t v = 0;
    shards[0]->run_sync([&] { v = seq; });
    return v;
  }

  // Messages that can no longer complete (a receiver went away) must not stall the window.
  void unstall() {
    if (now_ns() - last_progress_ns.load() < 2'000'000'000LL) return;
    shards[0]->run_sync([&] {
      const std::uint64_t stuck = seq - completed.load();
      if (stuck == 0) return;
      errors += static_cast<int>(stuck);
      for (std::uint64_t n = completed.load(); n < seq; ++n) ring[n % kRing].store(0);
      completed.store(seq);
      last_progress_ns = now_ns();
      publish_more();
    });
  }

  // Sleeps `d` in slices, unstalling the window between them.
  void wait_for(std::chrono::milliseconds d, bool unstalling) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
      std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(50), end - Clock::now()));
      if (unstalling) unstall();
    }
  }

  bool wait_joined(std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (joined.load() < opt.clients && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      int settled = 0;
      bool all_started = true;
      for (auto& sh : shards) {
        sh->run_sync([&] {
          settled += sh->connecting;
          if (sh->started < sh->quota) all_started = false;
        });
      }
      if (all_started && settled == 0) break;  // every client joined or failed
    }
    return joined.load() == opt.clients;
  }

  void close_all() {
    for (auto& sh : shards) {
      sh->run_sync([&] {
        for (auto& c : sh->clients) c->close();
        if (sh->index == 0) {
          for (auto& p : publishers) p->close();
          if (rate_timer) rate_timer->cancel();
        }
      });
    }
  }

  // Warm-up rounds: forget the clients (after close_all and a pause).
  void reset_clients() {
    for (auto& sh : shards) {
      sh->run_sync([&] {
        sh->clients.clear();
        sh->started = sh->connecting = 0;
      });
    }
    joined = 0;
    errors = 0;
    connect_ms = -1;
  }

  template <typename F>
  void each_client(F f) {
    for (auto& sh : shards) {
      sh->run_sync([&] {
        for (auto& c : sh->clients) f(*c);
      });
    }
  }

  // The response's body ("" on failure).
  std::string http_get(const std::string& path) {
    try {
      asio::io_context ctx;
      tcp::socket s(ctx);
      s.connect(endpoint);
      const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      asio::write(s, asio::buffer(req));
      boost::system::error_code ec;
      std::string response;
      asio::read(s, asio::dynamic_buffer(response), ec);
      const auto body = response.find("\r\n\r\n");
      return body == std::string::npos ? std::string() : response.substr(body + 4);
    } catch (const std::exception& e) {
      std::cerr << "GET " << path << " failed: " << e.what() << "\n";
      return {};
    }
  }
};

void Client::start(const tcp::endpoint& ep) {
  sock_.async_connect(ep, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) return self->fail("connect: " + ec.message());
    self->sock_.set_option(tcp::no_delay(true));
    std::string req = "GET " + self->bench_.request_target(self->room_) +
                      " HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    self->write(std::move(req));
    self->read();
  });
}

void Client::write(std::string frame) {
  out_.push_back(std::move(frame));
  if (!writing_) do_write();
}

void Client::do_write() {
  if (out_.empty() || failed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  asio::async_write(sock_, asio::buffer(out_.front()), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
    if (ec) return self->fail("write: " + ec.message());
    self->out_.pop_front();
    self->do_write();
  });
}

void Client::read() {
  if (have_ == buf_.size()) buf_.resize(buf_.size() * 2);
  sock_.async_read_some(asio::buffer(buf_.data() + have_, buf_.size() - have_),
                        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                          if (ec) return self->fail("read: " + ec.message());
                          self->on_data(n);
                          if (!self->failed_) self->read();
                        });
}

void Client::on_data(std::size_t n) {
  have_ += n;
  std::size_t pos = 0;
  if (!upgraded_) {
    const std::string_view view(buf_.data(), have_);
    const auto end = view.find("\r\n\r\n");
    if (end == std::string_view::npos) return;
    if (view.substr(0, 12) != "HTTP/1.1 101") return fail("upgrade refused: " + std::string(view.substr(0, view.find('\r'))));
    upgraded_ = true;
    pos = end + 4;
    if (bench_.opt.protocol == "ws") {
      joined_ = true;
      bench_.on_joined(*this, publisher_);
      if (publisher_) bench_.publish_more();
    }
  }
  // Server frames are unmasked.
  while (have_ - pos >= 2) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(buf_.data() + pos);
    const std::uint8_t opcode = p[0] & 0x0F;
    std::uint64_t len = p[1] & 0x7F;
    std::size_t header = 2;
    if (len == 126) {
      if (have_ - pos < 4) break;
      len = (std::uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (len == 127) {
      if (have_ - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      header = 10;
    }
    if (have_ - pos < header + len) break;
    const std::string_view payload(buf_.data() + pos + header, static_cast<std::size_t>(len));
    if (opcode == 0x1 || opcode == 0x2) {
      on_message(payload);
    } else if (opcode == 0x9) {
      write(client_frame(0xA, payload));
    } else if (opcode == 0x8) {
      return fail("closed by the server");
    }
    pos += header + static_cast<std::size_t>(len);
  }
  if (pos > 0) {
    std::memmove(buf_.data(), buf_.data() + pos, have_ - pos);
    have_ -= pos;
  }
  if (have_ == 0 && buf_.size() > 8192) {
    buf_.resize(8192);
    buf_.shrink_to_fit();
  }
}

void Client::on_message(std::string_view m) {
  if (bench_.opt.protocol == "ws") {
    if (!publisher_) bench_.on_delivery(*this, m);
    return;
  }
  // Engine.IO / Socket.IO
  if (m.empty()) return;
  switch (m[0]) {
    case '0':
      send_text("40");
      return;
    case '2':
      send_text("3");
      return;
    case '4':
      break;
    default:
      return;
  }
  if (m.rfind("40", 0) == 0) {
    if (publisher_) {
      joined_ = true;  // the publisher only emits
      bench_.publish_more();
    } else {
      send_text("420[\"join\",\"" + bench_.room_name(room_) + "\"]");
    }
    return;
  }
  if (m.rfind("430", 0) == 0 && !joined_) {
    joined_ = true;
    bench_.on_joined(*this, publisher_);
    return;
  }
  if (m.rfind("42[\"msg\",\"", 0) == 0 && !publisher_) bench_.on_delivery(*this, m.substr(10));
}

void Client::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  close();
  static std::atomic<int> shown{0};
  if (shown++ < 5) std::cerr << "client error: " << why << "\n";
  bench_.on_failed(*this, !joined_ && !publisher_);
}

double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = std::stoi(v);
    else if (k == "--protocol") o.protocol = v;
    else if (k == "--path") o.path = v;
    else if (k == "--scenario") o.scenario = v;
    else if (k == "--clients") o.clients = std::stoi(v);
    else if (k == "--room") o.room = v;
    else if (k == "--server-pid") o.server_pid = std::stoi(v);
    else if (k == "--duration-s") o.duration_s = std::stod(v);
    else if (k == "--window") o.window = std::stoi(v);
    else if (k == "--payload") o.payload = std::stoi(v);
    else if (k == "--concurrency") o.concurrency = std::stoi(v);
    else if (k == "--settle-ms") o.settle_ms = std::stoi(v);
    else if (k == "--idle-ms") o.idle_ms = std::stoi(v);
    else if (k == "--gc-path") o.gc_path = v;
    else if (k == "--warmup") o.warmup = std::stoi(v);
    else if (k == "--port-b") o.port_b = std::stoi(v);
    else if (k == "--server-pid-b") o.server_pid_b = std::stoi(v);
    else if (k == "--redis-pid") o.redis_pid = std::stoi(v);
    else if (k == "--drain-ms") o.drain_ms = std::stoi(v);
    else if (k == "--threads") o.threads = std::stoi(v);
    else if (k == "--rooms") o.rooms = std::stoi(v);
    else if (k == "--rate") o.rate = std::stod(v);
    else if (k == "--stats-path") o.stats_path = v;
    else {
      std::cerr << "unknown option " << k << "\n";
      std::exit(2);
    }
  }
  if (o.protocol != "sio" && o.protocol != "ws") {
    std::cerr << "--protocol must be sio or ws\n";
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  Bench b(parse(argc, argv));
  const Options& o = b.opt;
  const int pid = o.server_pid;
  auto json_num = [](double v) {
    char s[64];
    std::snprintf(s, sizeof s, "%.1f", v);
    return std::string(s);
  };
  auto json_num2 = [](double v) {
    char s[64];
    std::snprintf(s, sizeof s, "%.2f", v);
    return std::string(s);
  };

  long rss_before = -1, rss_after = -1;
  std::string stats_before;
  // Warm-up rounds: the server's first burst of upgrades grows its heaps (V8 keeps the young
  // generation it grew); measuring after it shows what connections cost in steady state.
  for (int round = 0; round < o.warmup; ++round) {
    b.connect_all();
    b.wait_joined(std::chrono::seconds(120));
    std::cerr << "warm-up " << round + 1 << ": joined " << b.joined.load() << "\n";
    b.close_all();
    b.wait_for(std::chrono::milliseconds(500), false);
    b.reset_clients();
    b.wait_for(std::chrono::milliseconds(o.settle_ms), false);
  }
  const bool gc = !o.gc_path.empty() && o.gc_path != "none";  // --gc-path none: never ask for a GC
  if (pid && o.scenario == "idle") {
    if (gc) b.http_get(o.gc_path);
    usleep(static_cast<useconds_t>(o.settle_ms) * 1000);
    rss_before = read_rss_kb(pid);
    if (!o.stats_path.empty()) stats_before = b.http_get(o.stats_path);
  }
  if (o.scenario == "storm") b.opt.concurrency = o.clients;
  b.connect_all();
  const bool all = b.wait_joined(std::chrono::seconds(120));
  std::cerr << "joined " << b.joined.load() << "/" << o.clients << " in " << b.connect_ms.load() << " ms, errors "
            << b.errors.load() << "\n";

  std::ostringstream out;
  out << "{\"scenario\":\"" << o.scenario << "\",\"protocol\":\"" << o.protocol << "\",\"clients\":" << o.clients
      << ",\"threads\":" << o.threads << ",\"rooms\":" << o.rooms << ",\"rate\":" << json_num(o.rate)
      << ",\"window\":" << o.window << ",\"connected\":" << b.joined.load()
      << ",\"connect_ms\":" << json_num(all ? b.connect_ms.load() : -1);

  if (o.scenario == "idle" && pid) {
    b.wait_for(std::chrono::milliseconds(o.settle_ms), false);  // pings are answered meanwhile
    if (gc) b.http_get(o.gc_path);
    b.wait_for(std::chrono::milliseconds(o.settle_ms), false);
    const long rss_fresh = read_rss_kb(pid);
    // Then the connections sit idle (heartbeats only) before the reading that counts: the
    // memory an idle server keeps, after its runtime gave back what the connect burst took.
    rss_after = rss_fresh;
    if (o.idle_ms > 0) {
      b.wait_for(std::chrono::milliseconds(o.idle_ms), false);
      if (gc) b.http_get(o.gc_path);
      b.wait_for(std::chrono::milliseconds(o.settle_ms), false);
      rss_after = read_rss_kb(pid);
    }
    const std::string stats = o.stats_path.empty() ? std::string() : b.http_get(o.stats_path);
    const int joined = b.joined.load();
    const auto per_conn = [&](long after) { return joined > 0 ? static_cast<double>(after - rss_before) * 1024.0 / joined : 0; };
    out << ",\"rss_before_kb\":" << rss_before << ",\"rss_fresh_kb\":" << rss_fresh << ",\"rss_after_kb\":" << rss_after
        << ",\"idle_ms\":" << o.idle_ms << ",\"gc\":" << (gc ? "true" : "false")
        << ",\"rss_per_conn_fresh_bytes\":" << json_num(per_conn(rss_fresh))
        << ",\"rss_per_conn_bytes\":" << json_num(per_conn(rss_after));
    if (!stats.empty() && stats.front() == '{') out << ",\"stats\":" << stats;
    if (!stats_before.empty() && stats_before.front() == '{') out << ",\"stats_before\":" << stats_before;
  }

  if (o.scenario == "fanout" || b.cluster) {
    b.start_publishing();
    b.wait_for(std::chrono::seconds(1), true);  // warm up for a second, then measure
    b.measuring = true;
    const std::uint64_t seq0 = b.seq_snapshot();
    const double cpu0 = pid ? read_cpu_s(pid) : 0;
    const double cpu_b0 = b.cluster && o.server_pid_b ? read_cpu_s(o.server_pid_b) : 0;
    const double cpu_r0 = b.cluster && o.redis_pid ? read_cpu_s(o.redis_pid) : 0;
    const double self0 = process_cpu_s();
    const auto threads_a0 = pid ? read_threads(pid) : decltype(read_threads(0)){};
    const auto threads_b0 = b.cluster && o.server_pid_b ? read_threads(o.server_pid_b) : decltype(read_threads(0)){};
    const auto t0 = Clock::now();
    b.wait_for(std::chrono::milliseconds(static_cast<long>(o.duration_s * 1000)), true);
    b.measuring = false;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu_a = pid ? read_cpu_s(pid) - cpu0 : 0;
    const double self_cpu = process_cpu_s() - self0;
    const std::string threads_a = pid ? threads_json(threads_a0, read_threads(pid)) : "{}";
    const std::uint64_t messages = b.seq_snapshot() - seq0;
    double cpu = cpu_a;
    // Every shard's figures, gathered on its own thread.
    std::vector<std::uint32_t> latencies, latencies_node[2];
    std::uint64_t deliveries = 0, deliveries_node[2] = {0, 0};
    for (auto& sh : b.shards) {
      sh->run_sync([&] {
        latencies.insert(latencies.end(), sh->latencies_us.begin(), sh->latencies_us.end());
        deliveries += sh->deliveries;
        for (int n = 0; n < 2; ++n) {
          latencies_node[n].insert(latencies_node[n].end(), sh->latencies_node_us[n].begin(), sh->latencies_node_us[n].end());
          deliveries_node[n] += sh->deliveries_node[n];
        }
      });
    }
    if (b.cluster) {
      const double cpu_b = o.server_pid_b ? read_cpu_s(o.server_pid_b) - cpu_b0 : 0;
      const double cpu_r = o.redis_pid ? read_cpu_s(o.redis_pid) - cpu_r0 : 0;
      const std::string threads_b = o.server_pid_b ? threads_json(threads_b0, read_threads(o.server_pid_b)) : "{}";
      cpu = cpu_a + cpu_b;
      // The publisher stops; what is in flight drains (deliveries no longer counted), then
      // every receiver should have had every message sent, once.
      b.publishing = false;
      const auto drain_end = Clock::now() + std::chrono::milliseconds(o.drain_ms);
      while (b.seq_snapshot() > b.completed.load() && Clock::now() < drain_end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // late duplicates
      const std::uint64_t sent = b.seq_snapshot();
      std::uint64_t missing[2] = {0, 0}, short_receivers[2] = {0, 0}, connected[2] = {0, 0};
      std::uint64_t duplicates = 0, reordered = 0;
      b.each_client([&](Client& c) {
        if (!c.joined()) return;
        ++connected[c.node()];
        const std::uint64_t lost = sent - std::min(sent, c.unique());
        missing[c.node()] += lost;
        if (lost) ++short_receivers[c.node()];
        duplicates += c.duplicates();
        reordered += c.reordered();
      });
      const auto lat = [&](std::vector<std::uint32_t>& v) {
        std::ostringstream l;
        l << "{\"p50\":" << percentile(v, 0.50) << ",\"p99\":" << percentile(v, 0.99)
          << ",\"max\":" << (v.empty() ? 0 : *std::max_element(v.begin(), v.end())) << "}";
        return l.str();
      };
      out << ",\"connected_a\":" << connected[0] << ",\"connected_b\":" << connected[1]
          << ",\"deliveries_a\":" << deliveries_node[0] << ",\"deliveries_b\":" << deliveries_node[1]
          << ",\"cpu_a_s\":" << json_num2(cpu_a) << ",\"cpu_b_s\":" << json_num2(cpu_b)
          << ",\"redis_cpu_s\":" << json_num2(cpu_r) << ",\"threads_a\":" << threads_a << ",\"threads_b\":" << threads_b
          << ",\"latency_a_us\":" << lat(latencies_node[0]) << ",\"latency_b_us\":" << lat(latencies_node[1])
          << ",\"sent\":" << sent << ",\"undrained\":" << (sent - std::min(sent, b.completed.load()))
          << ",\"missing_a\":" << missing[0] << ",\"missing_b\":" << missing[1]
          << ",\"short_receivers_a\":" << short_receivers[0] << ",\"short_receivers_b\":" << short_receivers[1]
          << ",\"duplicates\":" << duplicates << ",\"reordered\":" << reordered;
    } else {
      out << ",\"server_threads\":" << threads_a;
    }
    out << ",\"messages\":" << messages << ",\"messages_per_sec\":" << json_num(static_cast<double>(messages) / secs)
        << ",\"deliveries\":" << deliveries << ",\"seconds\":" << json_num(secs)
        << ",\"deliveries_per_sec\":" << json_num(static_cast<double>(deliveries) / secs)
        << ",\"server_cpu_s\":" << (b.cluster ? json_num2(cpu) : json_num(cpu))
        << ",\"loadgen_cpu_s\":" << json_num2(self_cpu)
        << ",\"deliveries_per_cpu_s\":" << json_num(cpu > 0 ? static_cast<double>(deliveries) / cpu : 0)
        << ",\"latency_us\":{\"p50\":" << percentile(latencies, 0.50) << ",\"p99\":" << percentile(latencies, 0.99)
        << ",\"max\":" << (latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end())) << "}";
  }
  out << ",\"errors\":" << b.errors.load() << "}";
  b.close_all();
  std::cout << out.str() << std::endl;
  return all ? 0 : 1;
}
