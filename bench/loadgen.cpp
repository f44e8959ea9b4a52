// sidewire_loadgen: opens N Socket.IO (Engine.IO 4 over WebSocket) or raw WebSocket clients,
// joins them to a room, and measures what the server does for them: connect time, RSS per
// connection, deliveries per second and per server CPU-second (from /proc/<pid>), latency.
// One Asio thread: the generator must not be the bottleneck on a 2-core machine, so frames are
// parsed in place and client frames carry a zero mask key (valid, and nothing to XOR).
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
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
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

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(Bench& bench, asio::io_context& io, bool publisher, int node = 0)
      : bench_(bench), sock_(io), publisher_(publisher), node_(node) {}
  void start(const tcp::endpoint& ep);
  void send_text(std::string_view payload) { write(client_frame(0x1, payload)); }
  bool joined() const { return joined_; }
  void close() {
    boost::system::error_code ec;
    sock_.close(ec);
  }
  int node() const { return node_; }

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
  tcp::socket sock_;
  bool publisher_;
  int node_;  // cluster: 0 = node A (--port), 1 = node B (--port-b)
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
  explicit Bench(Options o) : opt(std::move(o)) {
    if (opt.path.empty()) opt.path = opt.protocol == "sio" ? "/socket.io/" : "/ws/bench";
    tcp::resolver r(io);
    endpoint = *r.resolve(opt.host, std::to_string(opt.port)).begin();
    cluster = opt.scenario == "cluster";
    if (cluster) {
      if (opt.port_b <= 0) {
        std::cerr << "--scenario cluster needs --port-b\n";
        std::exit(2);
      }
      endpoint_b = *r.resolve(opt.host, std::to_string(opt.port_b)).begin();
    }
    payload_pad.assign(static_cast<std::size_t>(std::max(0, opt.payload)), 'x');
  }

  Options opt;
  asio::io_context io;
  tcp::endpoint endpoint;
  tcp::endpoint endpoint_b;  // cluster: node B
  bool cluster = false;
  std::vector<std::shared_ptr<Client>> clients;
  std::shared_ptr<Client> publisher;
  int connecting = 0;
  int started = 0;
  int joined = 0;
  int errors = 0;
  Clock::time_point connect_start;
  double connect_ms = -1;

  // fan-out bookkeeping
  bool measuring = false;
  std::uint64_t deliveries = 0;
  std::uint64_t seq = 0;         // next message number
  std::uint64_t completed = 0;   // messages every receiver got
  std::map<std::uint64_t, int> pending;  // seq -> receivers still to get it
  std::vector<std::uint32_t> latencies_us;
  std::vector<std::uint32_t> latencies_node_us[2];  // cluster: receivers on A, on B
  std::uint64_t deliveries_node[2] = {0, 0};
  bool publishing = true;  // cluster: false while the messages in flight drain
  std::string payload_pad;
  Clock::time_point last_progress;

  std::string request_target() const {
    if (opt.protocol == "sio") return opt.path + "?EIO=4&transport=websocket";
    return opt.path + "?room=" + opt.room;
  }

  void connect_more() {
    while (started < opt.clients && connecting < opt.concurrency) {
      const int node = cluster ? started % 2 : 0;  // cluster: half on A, half on B
      auto c = std::make_shared<Client>(*this, io, false, node);
      clients.push_back(c);
      ++started;
      ++connecting;
      c->start(node ? endpoint_b : endpoint);
    }
  }

  void on_joined(Client& c, bool publisher_client) {
    if (publisher_client) return;
    ++joined;
    --connecting;
    if (joined == opt.clients) {
      connect_ms = std::chrono::duration<double, std::milli>(Clock::now() - connect_start).count();
    }
    connect_more();
    (void)c;
  }

  void on_failed(bool counted) {
    ++errors;
    if (counted) {
      --connecting;
      connect_more();
    }
  }

  void publish_more() {
    if (!publisher || !publisher->joined() || !publishing) return;
    while (seq - completed < static_cast<std::uint64_t>(opt.window)) {
      std::string body = "t=" + std::to_string(now_ns()) + ";s=" + std::to_string(seq) + ";";
      if (body.size() < payload_pad.size()) body.append(payload_pad, 0, payload_pad.size() - body.size());
      pending[seq] = opt.clients;
      ++seq;
      if (opt.protocol == "sio") {
        publisher->send_text("42[\"publish\",\"" + opt.room + "\",\"" + body + "\"]");
      } else {
        publisher->send_text(body);
      }
    }
  }

  void on_delivery(Client& c, std::string_view body) {
    const auto t = body.find("t=");
    const auto s = body.find(";s=");
    if (t == std::string_view::npos || s == std::string_view::npos) return;
    const std::int64_t sent = std::strtoll(body.data() + t + 2, nullptr, 10);
    const std::uint64_t n = std::strtoull(body.data() + s + 3, nullptr, 10);
    if (cluster) c.saw(n);
    if (measuring) {
      ++deliveries;
      const auto us = static_cast<std::uint32_t>(std::max<std::int64_t>(0, (now_ns() - sent) / 1000));
      latencies_us.push_back(us);
      if (cluster) {
        ++deliveries_node[c.node()];
        latencies_node_us[c.node()].push_back(us);
      }
    }
    auto it = pending.find(n);
    if (it != pending.end() && --it->second == 0) {
      pending.erase(it);
      ++completed;
      last_progress = Clock::now();
      publish_more();
    }
  }

  // Messages that can no longer complete (a receiver went away) must not stall the window.
  void unstall() {
    if (Clock::now() - last_progress < std::chrono::seconds(2) || pending.empty()) return;
    errors += static_cast<int>(pending.size());
    completed += pending.size();
    pending.clear();
    last_progress = Clock::now();
    publish_more();
  }

  void run_for(std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
  }

  bool wait_joined(std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (joined + 0 < opt.clients && Clock::now() < deadline) {
      run_for(std::chrono::milliseconds(20));
      if (started == opt.clients && connecting == 0 && joined + errors >= opt.clients) break;
    }
    return joined == opt.clients;
  }

  void http_get(const std::string& path) {
    try {
      asio::io_context ctx;
      tcp::socket s(ctx);
      s.connect(endpoint);
      const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      asio::write(s, asio::buffer(req));
      boost::system::error_code ec;
      std::string sink;
      asio::read(s, asio::dynamic_buffer(sink), ec);
    } catch (const std::exception& e) {
      std::cerr << "GET " << path << " failed: " << e.what() << "\n";
    }
  }
};

void Client::start(const tcp::endpoint& ep) {
  sock_.async_connect(ep, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) return self->fail("connect: " + ec.message());
    self->sock_.set_option(tcp::no_delay(true));
    std::string req = "GET " + self->bench_.request_target() +
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
      send_text("420[\"join\",\"" + bench_.opt.room + "\"]");
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
  static int shown = 0;
  if (shown++ < 5) std::cerr << "client error: " << why << "\n";
  bench_.on_failed(!joined_ && !publisher_);
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
  // Warm-up rounds: the server's first burst of upgrades grows its heaps (V8 keeps the young
  // generation it grew); measuring after it shows what connections cost in steady state.
  for (int round = 0; round < o.warmup; ++round) {
    b.connect_start = Clock::now();
    b.connect_more();
    b.wait_joined(std::chrono::seconds(120));
    std::cerr << "warm-up " << round + 1 << ": joined " << b.joined << "\n";
    for (auto& c : b.clients) c->close();
    b.run_for(std::chrono::milliseconds(500));
    b.clients.clear();
    b.run_for(std::chrono::milliseconds(o.settle_ms));
    b.started = b.connecting = b.joined = b.errors = 0;
    b.connect_ms = -1;
  }
  if (pid && o.scenario == "idle") {
    b.http_get(o.gc_path);
    usleep(static_cast<useconds_t>(o.settle_ms) * 1000);
    rss_before = read_rss_kb(pid);
  }
  if (o.scenario == "storm") b.opt.concurrency = o.clients;
  b.connect_start = Clock::now();
  b.connect_more();
  const bool all = b.wait_joined(std::chrono::seconds(120));
  std::cerr << "joined " << b.joined << "/" << o.clients << " in " << b.connect_ms << " ms, errors " << b.errors << "\n";

  std::ostringstream out;
  out << "{\"scenario\":\"" << o.scenario << "\",\"protocol\":\"" << o.protocol << "\",\"clients\":" << o.clients
      << ",\"connected\":" << b.joined << ",\"connect_ms\":" << json_num(all ? b.connect_ms : -1);

  if (o.scenario == "idle" && pid) {
    b.run_for(std::chrono::milliseconds(o.settle_ms));  // answer pings meanwhile
    b.http_get(o.gc_path);
    b.run_for(std::chrono::milliseconds(o.settle_ms));
    const long rss_fresh = read_rss_kb(pid);
    // Then the connections sit idle (heartbeats only) before the reading that counts: the
    // memory an idle server keeps, after its runtime gave back what the connect burst took.
    rss_after = rss_fresh;
    if (o.idle_ms > 0) {
      b.run_for(std::chrono::milliseconds(o.idle_ms));
      b.http_get(o.gc_path);
      b.run_for(std::chrono::milliseconds(o.settle_ms));
      rss_after = read_rss_kb(pid);
    }
    const auto per_conn = [&](long after) { return b.joined > 0 ? static_cast<double>(after - rss_before) * 1024.0 / b.joined : 0; };
    out << ",\"rss_before_kb\":" << rss_before << ",\"rss_fresh_kb\":" << rss_fresh << ",\"rss_after_kb\":" << rss_after
        << ",\"idle_ms\":" << o.idle_ms << ",\"rss_per_conn_fresh_bytes\":" << json_num(per_conn(rss_fresh))
        << ",\"rss_per_conn_bytes\":" << json_num(per_conn(rss_after));
  }

  if (o.scenario == "fanout" || b.cluster) {
    b.publisher = std::make_shared<Client>(b, b.io, true);
    b.publisher->start(b.endpoint);
    b.last_progress = Clock::now();
    // warm up for a second, then measure
    const auto warm_end = Clock::now() + std::chrono::seconds(1);
    while (Clock::now() < warm_end) {
      b.run_for(std::chrono::milliseconds(50));
      b.unstall();
    }
    b.measuring = true;
    const std::uint64_t seq0 = b.seq;
    const double cpu0 = pid ? read_cpu_s(pid) : 0;
    const double cpu_b0 = b.cluster && o.server_pid_b ? read_cpu_s(o.server_pid_b) : 0;
    const double cpu_r0 = b.cluster && o.redis_pid ? read_cpu_s(o.redis_pid) : 0;
    const auto threads_a0 = b.cluster && pid ? read_threads(pid) : decltype(read_threads(0)){};
    const auto threads_b0 = b.cluster && o.server_pid_b ? read_threads(o.server_pid_b) : decltype(read_threads(0)){};
    const auto t0 = Clock::now();
    const auto end = t0 + std::chrono::milliseconds(static_cast<long>(o.duration_s * 1000));
    while (Clock::now() < end) {
      b.run_for(std::chrono::milliseconds(50));
      b.unstall();
    }
    b.measuring = false;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double cpu_a = pid ? read_cpu_s(pid) - cpu0 : 0;
    double cpu = cpu_a;
    if (b.cluster) {
      const double cpu_b = o.server_pid_b ? read_cpu_s(o.server_pid_b) - cpu_b0 : 0;
      const double cpu_r = o.redis_pid ? read_cpu_s(o.redis_pid) - cpu_r0 : 0;
      const std::string threads_a = pid ? threads_json(threads_a0, read_threads(pid)) : "{}";
      const std::string threads_b = o.server_pid_b ? threads_json(threads_b0, read_threads(o.server_pid_b)) : "{}";
      cpu = cpu_a + cpu_b;
      const std::uint64_t messages = b.seq - seq0;
      // The publisher stops; what is in flight drains (deliveries no longer counted), then
      // every receiver should have had every message sent, once.
      b.publishing = false;
      const auto drain_end = Clock::now() + std::chrono::milliseconds(o.drain_ms);
      while (!b.pending.empty() && Clock::now() < drain_end) b.run_for(std::chrono::milliseconds(20));
      b.run_for(std::chrono::milliseconds(100));  // late duplicates
      std::uint64_t missing[2] = {0, 0}, short_receivers[2] = {0, 0}, connected[2] = {0, 0};
      std::uint64_t duplicates = 0, reordered = 0;
      for (const auto& c : b.clients) {
        if (!c->joined()) continue;
        ++connected[c->node()];
        const std::uint64_t lost = b.seq - std::min(b.seq, c->unique());
        missing[c->node()] += lost;
        if (lost) ++short_receivers[c->node()];
        duplicates += c->duplicates();
        reordered += c->reordered();
      }
      const auto lat = [&](std::vector<std::uint32_t>& v) {
        std::ostringstream l;
        l << "{\"p50\":" << percentile(v, 0.50) << ",\"p99\":" << percentile(v, 0.99)
          << ",\"max\":" << (v.empty() ? 0 : *std::max_element(v.begin(), v.end())) << "}";
        return l.str();
      };
      out << ",\"connected_a\":" << connected[0] << ",\"connected_b\":" << connected[1]
          << ",\"messages\":" << messages << ",\"messages_per_sec\":" << json_num(static_cast<double>(messages) / secs)
          << ",\"deliveries_a\":" << b.deliveries_node[0] << ",\"deliveries_b\":" << b.deliveries_node[1]
          << ",\"cpu_a_s\":" << json_num2(cpu_a) << ",\"cpu_b_s\":" << json_num2(cpu_b)
          << ",\"redis_cpu_s\":" << json_num2(cpu_r) << ",\"threads_a\":" << threads_a << ",\"threads_b\":" << threads_b
          << ",\"latency_a_us\":" << lat(b.latencies_node_us[0]) << ",\"latency_b_us\":" << lat(b.latencies_node_us[1])
          << ",\"sent\":" << b.seq << ",\"undrained\":" << b.pending.size()
          << ",\"missing_a\":" << missing[0] << ",\"missing_b\":" << missing[1]
          << ",\"short_receivers_a\":" << short_receivers[0] << ",\"short_receivers_b\":" << short_receivers[1]
          << ",\"duplicates\":" << duplicates << ",\"reordered\":" << reordered;
    }
    out << ",\"deliveries\":" << b.deliveries << ",\"seconds\":" << json_num(secs)
        << ",\"deliveries_per_sec\":" << json_num(static_cast<double>(b.deliveries) / secs)
        << ",\"server_cpu_s\":" << (b.cluster ? json_num2(cpu) : json_num(cpu))
        << ",\"deliveries_per_cpu_s\":" << json_num(cpu > 0 ? static_cast<double>(b.deliveries) / cpu : 0)
        << ",\"latency_us\":{\"p50\":" << percentile(b.latencies_us, 0.50)
        << ",\"p99\":" << percentile(b.latencies_us, 0.99)
        << ",\"max\":" << (b.latencies_us.empty() ? 0 : *std::max_element(b.latencies_us.begin(), b.latencies_us.end()))
        << "}";
  }
  out << ",\"errors\":" << b.errors << "}";
  for (auto& c : b.clients) c->close();
  if (b.publisher) b.publisher->close();
  std::cout << out.str() << std::endl;
  return all ? 0 : 1;
}
