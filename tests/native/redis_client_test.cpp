// sidewire::redis::Client against a real redis-server that each test starts on a free loopback
// port of its own (and always stops, whatever happens to the test), plus fake servers for what a
// real one never does. The io_context is polled on the test's thread: no locks, and every wait
// is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapter/redis_client.hpp"
#include "log.hpp"

namespace rd = sidewire::redis;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using State = rd::State;
using Type = rd::Reply::Type;

namespace {

// ---------------------------------------------------------------------------------------------
// URL parsing (no server)
// ---------------------------------------------------------------------------------------------

std::string parse_error(std::string_view url) {
  try {
    rd::Endpoint::parse_url(url);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(RedisEndpoint, ParsesAFullUrl) {
  const auto e = rd::Endpoint::parse_url("redis://alice:s3cret@cache.example.com:6380/2");
  EXPECT_EQ(e.host, "cache.example.com");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.username, "alice");
  EXPECT_EQ(e.password, "s3cret");
  EXPECT_EQ(e.db, 2);
  EXPECT_EQ(e.describe(), "alice@cache.example.com:6380/2");
  EXPECT_EQ(e.describe().find("s3cret"), std::string::npos);

  const auto p = rd::Endpoint::parse_url("REDIS://:only-a-password@10.1.2.3");
  EXPECT_EQ(p.username, "");
  EXPECT_EQ(p.password, "only-a-password");
  EXPECT_EQ(p.describe(), "10.1.2.3:6379/0");
}

TEST(RedisEndpoint, FillsInDefaults) {
  for (const char* url : {"redis://", "redis:///", "redis://127.0.0.1", "127.0.0.1"}) {
    const auto e = rd::Endpoint::parse_url(url);
    EXPECT_EQ(e.host, "127.0.0.1") << url;
    EXPECT_EQ(e.port, 6379) << url;
    EXPECT_EQ(e.db, 0) << url;
    EXPECT_TRUE(e.username.empty() && e.password.empty()) << url;
  }
  const auto bare = rd::Endpoint::parse_url("redis-7.internal:7001");
  EXPECT_EQ(bare.host, "redis-7.internal");
  EXPECT_EQ(bare.port, 7001);
  EXPECT_EQ(rd::Endpoint::parse_url("cache").host, "cache");
  EXPECT_EQ(rd::Endpoint::parse_url("redis://localhost/15").db, 15);
}

TEST(RedisEndpoint, TakesIpv6InBrackets) {
  const auto e = rd::Endpoint::parse_url("redis://[::1]:6380/1");
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.db, 1);
  EXPECT_EQ(e.describe(), "[::1]:6380/1");
  EXPECT_EQ(rd::Endpoint::parse_url("redis://u:p@[2001:db8::7]").host, "2001:db8::7");
  EXPECT_EQ(rd::Endpoint::parse_url("[fd00::5]:7000").port, 7000);
  EXPECT_EQ(rd::Endpoint::parse_url("::1").host, "::1");  // bare, alone: no port to confuse
}

TEST(RedisEndpoint, PercentDecodesUserAndPassword) {
  const auto e = rd::Endpoint::parse_url("redis://us%40er%3a1:p%3Aa%2Fs%40s%25%20w@h:1/0");
  EXPECT_EQ(e.username, "us@er:1");
  EXPECT_EQ(e.password, "p:a/s@s% w");
  EXPECT_EQ(e.host, "h");
  EXPECT_EQ(e.port, 1);
  // An unencoded '@' in the password: the host starts after the last one.
  const auto at = rd::Endpoint::parse_url("redis://:a@b@h2");
  EXPECT_EQ(at.password, "a@b");
  EXPECT_EQ(at.host, "h2");
}

TEST(RedisEndpoint, RejectsWhatItDoesNotSupportWithClearMessages) {
  EXPECT_NE(parse_error("rediss://cache:6380").find("rediss:// (Redis over TLS) is not supported"), std::string::npos);
  EXPECT_NE(parse_error("unix:///run/redis.sock").find("unix sockets"), std::string::npos);
  EXPECT_NE(parse_error("redis+unix:///run/redis.sock").find("unix sockets"), std::string::npos);
  EXPECT_NE(parse_error("/run/redis/redis.sock").find("unix sockets"), std::string::npos);
  EXPECT_NE(parse_error("http://cache").find("unknown scheme \"http://\""), std::string::npos);
  for (const char* url : {"redis://h:0", "redis://h:65536", "redis://h:abc", "redis://h:", "redis://h:+1", "h:99999999999"}) {
    EXPECT_NE(parse_error(url).find("the port must be a number from 1 to 65535"), std::string::npos) << url;
  }
  for (const char* url : {"redis://h/x", "redis://h/-1", "redis://h/1/2", "redis://h/99999999999"}) {
    EXPECT_NE(parse_error(url).find("the database must be a number"), std::string::npos) << url;
  }
  EXPECT_NE(parse_error("redis://[::1:6379").find("not closed with ']'"), std::string::npos);
  EXPECT_NE(parse_error("redis://[::1]x").find("only :port may follow"), std::string::npos);
  EXPECT_NE(parse_error("redis://::1:6379").find("must be in brackets"), std::string::npos);
  EXPECT_NE(parse_error("redis://h?db=1").find("query parameters"), std::string::npos);
  EXPECT_NE(parse_error("redis://h/1#x").find("fragment"), std::string::npos);
  EXPECT_NE(parse_error("redis://:p%zz@h").find("password has a '%' that is not followed by two hex digits"),
            std::string::npos);
  EXPECT_NE(parse_error("redis://u%4@h").find("username has a '%'"), std::string::npos);
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("not a url at all").find("the host has characters"), std::string::npos);
  EXPECT_NE(parse_error("redis://ca che:1").find("the host has characters"), std::string::npos);
  // Every message starts the same way, and none quotes a password back.
  EXPECT_EQ(parse_error("redis://h:abc").rfind("invalid Redis URL: ", 0), 0u);
  for (const char* url : {"redis://:hunter2@h:notaport", "redis://u:hunter2@h/notadb", "redis://:hunter2@h?x=1",
                          "redis://:hunter2%@h", "redis://:hunter2@ho st"}) {
    const std::string m = parse_error(url);
    EXPECT_NE(m, "(accepted)") << url;
    EXPECT_EQ(m.find("hunter2"), std::string::npos) << m;
  }
}

TEST(RedisEndpoint, NamesEveryState) {
  EXPECT_STREQ(rd::state_name(State::kConnecting), "connecting");
  EXPECT_STREQ(rd::state_name(State::kReady), "ready");
  EXPECT_STREQ(rd::state_name(State::kDisconnected), "disconnected");
  EXPECT_STREQ(rd::state_name(State::kClosed), "closed");
}

// ---------------------------------------------------------------------------------------------
// A redis-server of the test's own
// ---------------------------------------------------------------------------------------------

std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// A port nobody listens on right now: bound to port 0, read back, released.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Does anything on the port answer a PING (PONG, or an error such as NOAUTH)? Blocking, bounded.
bool answers_ping(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  timeval tv{0, 500 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    static const char kPing[] = "*1\r\n$4\r\nPING\r\n";
    char c = 0;
    ok = ::send(fd, kPing, sizeof kPing - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof kPing - 1) &&
         ::recv(fd, &c, 1, 0) == 1 && (c == '+' || c == '-');
  }
  ::close(fd);
  return ok;
}

class RedisServer {
 public:
  RedisServer(std::string binary, std::uint16_t port, std::vector<std::string> extra)
      : binary_(std::move(binary)), port_(port), extra_(std::move(extra)) {}
  ~RedisServer() {
    stop();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }

  // Starts it and waits until it answers; on failure, why() says what happened.
  bool start() {
    if (pid_ > 0) return true;
    if (dir_.empty()) {
      char tmpl[] = "/tmp/sidewire-redis-test-XXXXXX";
      if (!::mkdtemp(tmpl)) return fail("mkdtemp failed");
      dir_ = tmpl;
    }
    std::vector<std::string> args = {binary_,   "--port",    std::to_string(port_), "--bind",      "127.0.0.1",
                                     "--save",  "",          "--appendonly",        "no",          "--dir",
                                     dir_,      "--daemonize", "no",               "--logfile",   ""};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = dir_ + "/redis.log";
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return fail("fork failed");
    if (pid == 0) {
      // Dies with the test process, however that ends; holds none of its sockets (a client
      // socket shared with the server would never close).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
        for (int fd = 3; fd < 4096; ++fd) ::close(fd);
      }
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (out >= 0) {
        ::dup2(out, 1);
        ::dup2(out, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return fail("redis-server exited at once: " + log_text());
      }
      if (answers_ping(port_)) return true;
      std::this_thread::sleep_for(20ms);
    }
    stop();
    return fail("redis-server did not answer within 5 s: " + log_text());
  }

  // SIGTERM, then SIGKILL if it is still there after 3 s.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + 3s;
    while (Clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    kill_now();
  }

  // A crash, as the clients see it.
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  const std::string& why() const { return why_; }

 private:
  bool fail(std::string why) {
    why_ = std::move(why);
    return false;
  }
  std::string log_text() const {
    std::ifstream in(dir_ + "/redis.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string binary_;
  std::uint16_t port_;
  std::vector<std::string> extra_;
  std::string dir_;
  pid_t pid_ = -1;
  std::string why_;
};

// A TCP server that answers each connection it accepts once, with bytes of the test's choosing
// (by connection index), then keeps it open and reads nothing.
class FakeServer : public std::enable_shared_from_this<FakeServer> {
 public:
  static std::shared_ptr<FakeServer> create(asio::io_context& io, std::function<std::string(int index)> answer) {
    auto s = std::shared_ptr<FakeServer>(new FakeServer(io, std::move(answer)));
    s->accept();
    return s;
  }
  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& s : sockets_) s->close(ignored);
    sockets_.clear();
  }

 private:
  FakeServer(asio::io_context& io, std::function<std::string(int)> answer)
      : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), answer_(std::move(answer)) {
    port_ = acceptor_.local_endpoint().port();
  }
  void accept() {
    acceptor_.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec) return;
      auto s = std::make_shared<tcp::socket>(std::move(socket));
      self->sockets_.push_back(s);
      auto bytes = std::make_shared<std::string>(self->answer_(self->accepted_++));
      if (!bytes->empty()) asio::async_write(*s, asio::buffer(*bytes), [s, bytes](auto&&...) {});
      self->accept();
    });
  }

  tcp::acceptor acceptor_;
  std::function<std::string(int)> answer_;
  std::uint16_t port_ = 0;
  int accepted_ = 0;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
};

// What a client went through, as its handlers saw it.
struct Probe {
  struct Message {
    std::string kind, pattern, channel, payload;
  };
  std::vector<std::pair<State, std::string>> states;
  std::vector<Message> messages;
  std::size_t count(State s) const {
    std::size_t n = 0;
    for (const auto& [state, why] : states) n += state == s ? 1 : 0;
    return n;
  }
};

struct Handle {
  std::shared_ptr<rd::Client> client;
  std::shared_ptr<Probe> probe;
  rd::Client* operator->() const { return client.get(); }
};

std::string binary_payload(std::size_t n, unsigned seed) {
  std::string s;
  s.reserve(n);
  for (int i = 0; i < 256 && s.size() < n; ++i) s.push_back(static_cast<char>(i));  // every byte, NUL first
  std::mt19937 rng(seed);
  while (s.size() < n) s.push_back(static_cast<char>(rng() & 0xff));
  return s;
}

class RedisClient : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = find_on_path("redis-server");
    if (!binary_) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)";
    // The client's log lines are captured (some tests look at them) and kept off stderr unless
    // SIDEWIRE_LOG_LEVEL asks for them: several tests make it warn on purpose.
    auto& logger = sidewire::log();
    saved_level_ = logger.level();
    for (auto& sink : logger.sinks()) {
      saved_sink_levels_.push_back(sink->level());
      if (!std::getenv("SIDEWIRE_LOG_LEVEL")) sink->set_level(spdlog::level::off);
    }
    capture_ = std::make_shared<spdlog::sinks::ostream_sink_st>(log_lines_);
    capture_->set_pattern("%l %v");
    logger.sinks().push_back(capture_);
    logger.set_level(spdlog::level::debug);
  }

  void TearDown() override {
    for (auto& c : clients_) c->close();
    for (auto& f : fakes_) f->close();
    run_for(50ms);  // the completions of what close() cancelled let go of the clients
    clients_.clear();
    fakes_.clear();
    servers_.clear();  // stops every server
    if (capture_) {
      auto& logger = sidewire::log();
      auto& sinks = logger.sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), capture_), sinks.end());
      for (std::size_t i = 0; i < saved_sink_levels_.size() && i < sinks.size(); ++i) {
        sinks[i]->set_level(saved_sink_levels_[i]);
      }
      logger.set_level(saved_level_);
    }
  }

  // A started server, or nullptr (with a test failure saying why).
  RedisServer* start_server(std::vector<std::string> extra = {}, std::uint16_t port = 0) {
    servers_.push_back(std::make_unique<RedisServer>(*binary_, port ? port : free_port(), std::move(extra)));
    RedisServer* s = servers_.back().get();
    if (!s->start()) {
      ADD_FAILURE() << "cannot start redis-server: " << s->why();
      return nullptr;
    }
    return s;
  }

  // Not started yet: a server for a port that stays free until then.
  RedisServer* server_for_later(std::vector<std::string> extra = {}) {
    servers_.push_back(std::make_unique<RedisServer>(*binary_, free_port(), std::move(extra)));
    return servers_.back().get();
  }

  static rd::ClientOptions options(std::uint16_t port, const std::string& name = "test") {
    rd::ClientOptions o;
    o.endpoint.port = port;
    o.name = name;
    o.connect_timeout = 2000ms;
    o.min_backoff = 20ms;
    o.max_backoff = 200ms;
    return o;
  }

  Handle make_client(rd::ClientOptions o, bool start = true) {
    Handle h{rd::Client::create(io_, std::move(o)), std::make_shared<Probe>()};
    auto probe = h.probe;
    h->on_state([probe](State s, const std::string& why) { probe->states.emplace_back(s, why); });
    h->on_message([probe](std::string_view kind, std::string_view pattern, std::string_view channel,
                          std::string_view payload) {
      probe->messages.push_back({std::string(kind), std::string(pattern), std::string(channel), std::string(payload)});
    });
    clients_.push_back(h.client);
    if (start) h->start();
    return h;
  }

  Handle ready_client(std::uint16_t port, const std::string& name = "test") {
    Handle h = make_client(options(port, name));
    EXPECT_TRUE(run_until([&] { return h->state() == State::kReady; })) << name << " never became ready";
    return h;
  }

  bool run_until(const std::function<bool()>& done, milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() >= deadline) return false;
      io_.run_for(5ms);
    }
    return true;
  }

  void run_for(milliseconds d) {
    const auto deadline = Clock::now() + d;
    while (Clock::now() < deadline) io_.run_for(5ms);
  }

  // Sends a command and waits for its reply: nullopt on nullptr or when none came in time.
  std::optional<rd::Reply> call(const Handle& h, std::vector<std::string> args) {
    auto got = std::make_shared<std::optional<std::optional<rd::Reply>>>();
    const bool queued = h->command(std::move(args), [got](const rd::Reply* r) {
      *got = r ? std::optional<rd::Reply>(*r) : std::nullopt;
    });
    if (!queued || !run_until([&] { return got->has_value(); })) return std::nullopt;
    return **got;
  }

  std::string logged() const { return log_lines_.str(); }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::optional<std::string> binary_;
  std::vector<std::unique_ptr<RedisServer>> servers_;
  std::vector<std::shared_ptr<rd::Client>> clients_;
  std::vector<std::shared_ptr<FakeServer>> fakes_;
  std::ostringstream log_lines_;
  std::shared_ptr<spdlog::sinks::ostream_sink_st> capture_;
  spdlog::level::level_enum saved_level_ = spdlog::level::info;
  std::vector<spdlog::level::level_enum> saved_sink_levels_;
};

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

TEST_F(RedisClient, SetGetIncrAndEveryReplyType) {
  RedisServer* server = start_server();
  ASSERT_TRUE(server);
  Handle c = ready_client(server->port());
  ASSERT_EQ(c->state(), State::kReady);

  auto set = call(c, {"SET", "greeting", "hello"});
  ASSERT_TRUE(set);
  EXPECT_EQ(set->type, Type::kStatus);
  EXPECT_EQ(set->str, "OK");
  auto get = call(c, {"GET", "greeting"});
  ASSERT_TRUE(get);
  EXPECT_EQ(get->type, Type::kString);
  EXPECT_EQ(get->str, "hello");
  for (long long i = 1; i <= 3; ++i) {
    auto incr = call(c, {"INCR", "counter"});
    ASSERT_TRUE(incr);
    EXPECT_EQ(incr->type, Type::kInteger);
    EXPECT_EQ(incr->integer, i);
  }
  auto missing = call(c, {"GET", "no-such-key"});
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->type, Type::kNil);
  auto error = call(c, {"INCR", "greeting"});
  ASSERT_TRUE(error);
  EXPECT_EQ(error->type, Type::kError);
  EXPECT_EQ(error->str.rfind("ERR", 0), 0u) << error->str;
  auto mget = call(c, {"MGET", "greeting", "no-such-key", "counter"});
  ASSERT_TRUE(mget);
  ASSERT_EQ(mget->type, Type::kArray);
  ASSERT_EQ(mget->elements.size(), 3u);
  EXPECT_EQ(mget->elements[0].str, "hello");
  EXPECT_EQ(mget->elements[1].type, Type::kNil);
  EXPECT_EQ(mget->elements[2].str, "3");

  // A callback that throws is logged and costs nothing else: the connection goes on.
  EXPECT_TRUE(c->command({"PING"}, [](const rd::Reply*) { throw std::runtime_error("from the callback"); }));
  auto after = call(c, {"ECHO", "still here"});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->str, "still here");
  EXPECT_NE(logged().find("a reply callback threw (from the callback)"), std::string::npos);
  EXPECT_EQ(c->state(), State::kReady);
  EXPECT_EQ(c->stats().protocol_errors, 0u);

  // What would put the replies out of step is refused, not sent.
  const auto dropped = c->stats().dropped;
  EXPECT_FALSE(c->command({"subscribe", "x"}));
  EXPECT_FALSE(c->command({"MONITOR"}));
  EXPECT_FALSE(c->command({}));
  EXPECT_EQ(c->stats().dropped, dropped + 3);
  auto ping = call(c, {"PING"});
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->str, "PONG");
}

TEST_F(RedisClient, AThousandPipelinedCommandsAreAnsweredInOrderFromOneWrite) {
  RedisServer* server = start_server();
  ASSERT_TRUE(server);
  Handle c = ready_client(server->port());
  const auto writes_before = c->stats().writes;
  std::vector<std::string> echoed;
  std::vector<long long> counts;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(c->command({"ECHO", std::to_string(i)}, [&](const rd::Reply* r) {
      echoed.push_back(r && r->type == Type::kString ? r->str : "?");
    }));
    ASSERT_TRUE(c->command({"INCR", "n"}, [&](const rd::Reply* r) { counts.push_back(r ? r->integer : -1); }));
  }
  ASSERT_TRUE(run_until([&] { return counts.size() == 1000; }));
  ASSERT_EQ(echoed.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(echoed[i], std::to_string(i));
    ASSERT_EQ(counts[i], i + 1);
  }
  // All 2000 were queued in one turn of the loop: they went out in one write.
  EXPECT_EQ(c->stats().writes, writes_before + 1);
}

TEST_F(RedisClient, BinaryKeysAndValuesRoundTrip) {
  RedisServer* server = start_server();
  ASSERT_TRUE(server);
  Handle c = ready_client(server->port());
  const std::string key("bin\0key\r\n", 9);
  const std::string small = binary_payload(300, 1);
  const std::string big = binary_payload(3u << 20, 2);  // many reads and several reader buffers
  ASSERT_TRUE(call(c, {"SET", key, small}));
  ASSERT_TRUE(call(c, {"SET", "big", big}));
  auto got_small = call(c, {"GET", key});
  auto got_big = call(c, {"GET", "big"});
  ASSERT_TRUE(got_small && got_big);
  EXPECT_EQ(got_small->str.size(), small.size());
  EXPECT_TRUE(got_small->str == small);
  EXPECT_EQ(got_big->str.size(), big.size());
  EXPECT_TRUE(got_big->str == big);
  auto len = call(c, {"STRLEN", key});
  ASSERT_TRUE(len);
  EXPECT_EQ(len->integer, 300);
}

// ---------------------------------------------------------------------------------------------
// Pub/sub
// ---------------------------------------------------------------------------------------------

TEST_F(RedisClient, SubscriberGetsMessagesPatternMessagesAndShardMessages) {
  RedisServer* server = start_server();
  ASSERT_TRUE(server);
  Handle sub = make_client(options(server->port(), "sub"));
  sub->subscribe("news");
  sub->subscribe("news");  // one subscription
  sub->psubscribe("ev.*");
  sub->ssubscribe("shard{1}");
  ASSERT_TRUE(run_until([&] { return sub->state() == State::kReady && sub->stats().confirmations == 3; }));
  Handle pub = ready_client(server->port(), "pub");

  const std::string payload = binary_payload(1000, 3);
  auto receivers = call(pub, {"PUBLISH", "news", "hello"});
  ASSERT_TRUE(receivers);
  EXPECT_EQ(receivers->integer, 1);
  ASSERT_TRUE(call(pub, {"PUBLISH", "ev.x", payload}));
  auto shard = call(pub, {"SPUBLISH", "shard{1}", "s"});
  ASSERT_TRUE(shard);
  EXPECT_EQ(shard->type, Type::kInteger) << shard->str;
  ASSERT_TRUE(run_until([&] { return sub.probe->messages.size() >= 3; }));
  run_for(50ms);  // nothing else may come: no confirmation is a message

  const auto& m = sub.probe->messages;
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].kind, "message");
  EXPECT_EQ(m[0].pattern, "");
  EXPECT_EQ(m[0].channel, "news");
  EXPECT_EQ(m[0].payload, "hello");
  EXPECT_EQ(m[1].kind, "pmessage");
  EXPECT_EQ(m[1].pattern, "ev.*");
  EXPECT_EQ(m[1].channel, "ev.x");
  EXPECT_TRUE(m[1].payload == payload);
  EXPECT_EQ(m[2].kind, "smessage");
  EXPECT_EQ(m[2].pattern, "");
  EXPECT_EQ(m[2].channel, "shard{1}");
  EXPECT_EQ(m[2].payload, "s");
  EXPECT_EQ(sub->stats().messages, 3u);
  EXPECT_EQ(sub->stats().confirmations, 3u);

  // A command on the subscriber still gets its own reply (PING answers ["pong", ""] there).
  auto pong = call(sub, {"PING"});
  ASSERT_TRUE(pong);
  ASSERT_EQ(pong->type, Type::kArray);
  ASSERT_FALSE(pong->elements.empty());
  EXPECT_EQ(pong->elements[0].str, "pong");

  // Unsubscribed: the server stops sending (PUBLISH counts no receiver) and nothing arrives.
  sub->unsubscribe("news");
  sub->punsubscribe("ev.*");
  sub->unsubscribe("never-subscribed");  // nothing to send
  ASSERT_TRUE(run_until([&] { return sub->stats().confirmations == 5; }));
  auto none = call(pub, {"PUBLISH", "news", "late"});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->integer, 0);
  ASSERT_TRUE(call(pub, {"PUBLISH", "ev.y", "late"}));
  ASSERT_TRUE(call(pub, {"SPUBLISH", "shard{1}", "still"}));
  ASSERT_TRUE(run_until([&] { return sub.probe->messages.size() == 4; }));
  EXPECT_EQ(sub.probe->messages[3].payload, "still");
  run_for(30ms);
  EXPECT_EQ(sub.probe->messages.size(), 4u);
  EXPECT_EQ(sub->stats().protocol_errors, 0u);
}

// ---------------------------------------------------------------------------------------------
// Connection loss and recovery
// ---------------------------------------------------------------------------------------------

TEST_F(RedisClient, KeepsTryingWhileRedisIsAbsentAndConnectsOnceItIsStarted) {
  RedisServer* later = server_for_later();
  Handle c = make_client(options(later->port()));
  bool queued_done = false;
  std::string queued_reply;
  ASSERT_TRUE(c->command({"SET", "queued", "while-down"}, [&](const rd::Reply* r) {
    queued_done = true;
    queued_reply = r ? r->str : "(nullptr)";
  }));
  EXPECT_GT(c->stats().pending_bytes, 0u);
  run_for(400ms);
  EXPECT_NE(c->state(), State::kReady);
  EXPECT_NE(c->state(), State::kClosed);
  EXPECT_GE(c->stats().reconnects, 2u);
  EXPECT_EQ(c->stats().connects, 0u);
  EXPECT_GE(c.probe->count(State::kDisconnected), 2u);
  EXPECT_EQ(c.probe->count(State::kReady), 0u);
  EXPECT_FALSE(queued_done);  // kept, not failed
  // The last disconnect says why (the run may end on the reconnect that follows it, which has none).
  const auto last_down = std::find_if(c.probe->states.rbegin(), c.probe->states.rend(),
                                      [](const auto& s) { return s.first == State::kDisconnected; });
  ASSERT_NE(last_down, c.probe->states.rend());
  EXPECT_NE(last_down->second.find("refused"), std::string::npos) << last_down->second;
  // The first failure warns, its repeats do not.
  const std::string log = logged();
  const auto first = log.find("warning redis test (127.0.0.1:");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("warning redis test (127.0.0.1:", first + 1), std::string::npos) << log;

  ASSERT_TRUE(later->start()) << later->why();
  ASSERT_TRUE(run_until([&] { return c->state() == State::kReady; }));
  ASSERT_TRUE(run_until([&] { return queued_done; }));
  EXPECT_EQ(queued_reply, "OK");
  EXPECT_EQ(c->stats().connects, 1u);
  EXPECT_EQ(c->stats().pending_bytes, 0u);
  Handle other = ready_client(later->port(), "other");
  auto value = call(other, {"GET", "queued"});
  ASSERT_TRUE(value);
  EXPECT_EQ(value->str, "while-down");
}

TEST_F(RedisClient, ServerKilledAndRestartedOnTheSamePort) {
  RedisServer* server = start_server();
  ASSERT_TRUE(server);
  Handle cmd = ready_client(server->port(), "cmd");
  Handle sub = make_client(options(server->port(), "sub"));
  sub->subscribe("chan");
  ASSERT_TRUE(run_until([&] { return sub->stats().confirmations == 1; }));
  Handle pub = ready_client(server->port(), "pub");
  ASSERT_TRUE(call(pub, {"PUBLISH", "chan", "before"}));
  ASSERT_TRUE(run_until([&] { return sub.probe->messages.size() == 1; }));

  // Blocked on the server, so certainly waiting for a reply when it dies.
  int blocked_calls = 0;
  bool blocked_got_null = false;
  ASSERT_TRUE(cmd->command({"BLPOP", "nothing-comes", "0"}, [&](const rd::Reply* r) {
    ++blocked_calls;
    blocked_got_null = r == nullptr;
  }));
  int ping_calls = 0;
  ASSERT_TRUE(cmd->command({"PING"}, [&](const rd::Reply* r) { ping_calls += r ? 100 : 1; }));
  run_for(50ms);
  ASSERT_EQ(blocked_calls, 0);

  server->kill_now();
  ASSERT_TRUE(run_until([&] { return blocked_calls == 1; }));
  EXPECT_TRUE(blocked_got_null);
  EXPECT_EQ(ping_calls, 1);  // behind the BLPOP: lost too, nullptr once
  ASSERT_TRUE(run_until([&] {
    return cmd->state() != State::kReady && sub->state() != State::kReady && pub->state() != State::kReady;
  }));
  EXPECT_GE(sub.probe->count(State::kDisconnected), 1u);

  ASSERT_TRUE(server->start()) << server->why();
  ASSERT_TRUE(run_until([&] {
    return cmd->state() == State::kReady && sub->state() == State::kReady && pub->state() == State::kReady;
  }));
  ASSERT_TRUE(run_until([&] { return sub->stats().confirmations == 2; }));  // subscribed again
  auto receivers = call(pub, {"PUBLISH", "chan", "after"});
  ASSERT_TRUE(receivers);
  EXPECT_EQ(receivers->integer, 1);
  ASSERT_TRUE(run_until([&] { return sub.probe->messages.size() == 2; }));
  EXPECT_EQ(sub.probe->messages[1].payload, "after");
  EXPECT_EQ(blocked_calls, 1);
  EXPECT_EQ(ping_calls, 1);

  // ready, then lost, then (through connecting) ready again.
  const auto& states = sub.probe->states;
  std::vector<State> seen;
  for (const auto& [s, why] : states) {
    if (seen.empty() || seen.back() != s) seen.push_back(s);
  }
  const auto ready = std::find(seen.begin(), seen.end(), State::kReady);
  ASSERT_NE(ready, seen.end());
  ASSERT_LT(ready + 1, seen.end());
  EXPECT_EQ(*(ready + 1), State::kDisconnected);
  EXPECT_EQ(seen.back(), State::kReady);
  EXPECT_EQ(sub->stats().connects, 2u);
  EXPECT_GE(sub->stats().reconnects, 1u);
  EXPECT_EQ(cmd->stats().protocol_errors, 0u);
  // One line per transition: info when ready, warn when lost.
  const std::string log = logged();
  EXPECT_NE(log.find("info redis sub (127.0.0.1:" + std::to_string(server->port()) + "/0): ready"), std::string::npos)
      << log;
  EXPECT_NE(log.find("warning redis sub (127.0.0.1:" + std::to_string(server->port()) + "/0): connection lost"),
            std::string::npos)
      << log;
}

TEST_F(RedisClient, CommandsPastThePendingBoundAreDroppedAndTheRestSentInOrder) {
  RedisServer* later = server_for_later();
  auto o = options(later->port());
  o.max_pending_bytes = 2000;
  Handle c = make_client(o);
  run_for(50ms);
  const std::string filler(100, 'x');
  int accepted = 0;
  std::vector<long long> lengths;
  while (c->command({"RPUSH", "list", std::to_string(accepted) + filler},
                    [&](const rd::Reply* r) { lengths.push_back(r ? r->integer : -1); })) {
    ++accepted;
    ASSERT_LT(accepted, 100);
  }
  EXPECT_GE(accepted, 10);  // about 2000 / 130
  EXPECT_EQ(c->stats().dropped, 1u);
  EXPECT_LE(c->stats().pending_bytes, 2000u);
  int dropped_called = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(c->command({"RPUSH", "list", "9" + filler}, [&](const rd::Reply*) { ++dropped_called; }));
  }
  EXPECT_EQ(c->stats().dropped, 6u);
  EXPECT_FALSE(c->command({"SET", "k", std::string(5000, 'y')}));  // bigger than the bound by itself
  EXPECT_EQ(c->stats().dropped, 7u);
  EXPECT_NE(logged().find("dropping them until there is room"), std::string::npos);

  ASSERT_TRUE(later->start()) << later->why();
  ASSERT_TRUE(run_until([&] { return lengths.size() == static_cast<std::size_t>(accepted); }));
  for (int i = 0; i < accepted; ++i) EXPECT_EQ(lengths[i], i + 1);
  auto list = call(c, {"LRANGE", "list", "0", "-1"});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->elements.size(), static_cast<std::size_t>(accepted));
  for (int i = 0; i < accepted; ++i) EXPECT_EQ(list->elements[i].str, std::to_string(i) + filler);
  EXPECT_EQ(dropped_called, 0);
  EXPECT_TRUE(c->command({"PING"}));  // room again
}

// ---------------------------------------------------------------------------------------------
// AUTH
// ---------------------------------------------------------------------------------------------

TEST_F(RedisClient, AuthWithThePasswordFromTheUrl) {
  RedisServer* server = start_server({"--requirepass", "p@ss w:rd/%"});
  ASSERT_TRUE(server);
  const std::string port = std::to_string(server->port());

  auto right = options(0, "right");
  right.endpoint = rd::Endpoint::parse_url("redis://:p%40ss%20w%3Ard%2F%25@127.0.0.1:" + port + "/3");
  Handle ok = make_client(right);
  ASSERT_TRUE(run_until([&] { return ok->state() == State::kReady; }));
  auto info = call(ok, {"CLIENT", "INFO"});
  ASSERT_TRUE(info);
  EXPECT_NE(info->str.find(" db=3 "), std::string::npos) << info->str;  // SELECT went through too

  // The same with a username: AUTH default <password>.
  auto named = options(0, "named");
  named.endpoint = rd::Endpoint::parse_url("redis://default:p%40ss%20w%3Ard%2F%25@127.0.0.1:" + port);
  Handle with_user = make_client(named);
  ASSERT_TRUE(run_until([&] { return with_user->state() == State::kReady; }));

  auto wrong = options(0, "wrong");
  wrong.endpoint = rd::Endpoint::parse_url("redis://:not-it@127.0.0.1:" + port);
  Handle refused = make_client(wrong);
  auto none = options(server->port(), "none");
  Handle no_password = make_client(none);
  int queued_calls = 0;
  bool queued_got_null = false;
  EXPECT_TRUE(refused->command({"PING"}, [&](const rd::Reply* r) {
    ++queued_calls;
    queued_got_null = r == nullptr;
  }));
  run_for(500ms);
  for (const Handle* h : {&refused, &no_password}) {
    EXPECT_NE((*h)->state(), State::kReady);
    EXPECT_EQ((*h).probe->count(State::kReady), 0u);
    EXPECT_GE((*h)->stats().reconnects, 2u);  // retried, with backoff
    EXPECT_EQ((*h)->stats().connects, 0u);
  }
  EXPECT_EQ(queued_calls, 0);  // never sent without the handshake
  ASSERT_FALSE(refused.probe->states.empty());
  EXPECT_NE(refused.probe->states.back().second.find("AUTH refused (WRONGPASS"), std::string::npos)
      << refused.probe->states.back().second;
  ASSERT_FALSE(no_password.probe->states.empty());
  EXPECT_NE(no_password.probe->states.back().second.find("the server wants a password (NOAUTH"), std::string::npos)
      << no_password.probe->states.back().second;
  EXPECT_NE(logged().find("warning redis wrong (127.0.0.1:" + port + "/0): AUTH refused"), std::string::npos);
  EXPECT_EQ(logged().find("p@ss"), std::string::npos);  // no password in the log
  EXPECT_EQ(ok->state(), State::kReady);
  refused->close();  // the queued command is failed, here and not after the test's locals are gone
  EXPECT_EQ(queued_calls, 1);
  EXPECT_TRUE(queued_got_null);
}

// ---------------------------------------------------------------------------------------------
// Misbehaving servers
// ---------------------------------------------------------------------------------------------

TEST_F(RedisClient, GarbageFromTheServerIsAProtocolErrorAndTheClientReconnects) {
  auto fake = FakeServer::create(io_, [](int) { return std::string("HTTP/1.1 400 Bad Request\r\n\r\n"); });
  fakes_.push_back(fake);
  Handle c = make_client(options(fake->port()));
  ASSERT_TRUE(run_until([&] { return c->stats().protocol_errors >= 3 && fake->accepted() >= 3; }));
  EXPECT_NE(c->state(), State::kReady);
  EXPECT_GE(c->stats().reconnects, 2u);
  EXPECT_EQ(c->stats().connects, 0u);
  EXPECT_NE(logged().find("protocol error (Protocol error, got \"H\" as reply type byte)"), std::string::npos);
}

TEST_F(RedisClient, OtherBrokenStreamsAreProtocolErrorsToo) {
  // 0: a bulk string announced far larger than the bound, then bytes that never complete it;
  // 1: an answer to the PING and then one that nothing asked for;
  // 2: arrays nested deeper than hiredis follows.
  auto fake = FakeServer::create(io_, [](int i) {
    switch (i % 3) {
      case 0: return "$100000000000\r\n" + std::string(200 * 1024, 'x');
      case 1: return std::string("+PONG\r\n+EXTRA\r\n");
      default: return std::string("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n");
    }
  });
  fakes_.push_back(fake);
  auto o = options(fake->port());
  o.max_reply_bytes = 64 * 1024;
  Handle c = make_client(o);
  ASSERT_TRUE(run_until([&] { return c->stats().protocol_errors >= 6; }));
  const std::string log = logged();
  EXPECT_NE(log.find("a reply still incomplete after"), std::string::npos) << log;
  EXPECT_NE(log.find("a reply that no command asked for"), std::string::npos) << log;
  EXPECT_NE(log.find("No support for nested multi bulk replies"), std::string::npos) << log;
  EXPECT_GE(c->stats().connects, 2u);  // the +PONG ones were ready for a moment
  EXPECT_GE(fake->accepted(), 6);
}

TEST_F(RedisClient, AHandshakeThatNeverCompletesTimesOutAndIsRetried) {
  auto silent = FakeServer::create(io_, [](int) { return std::string(); });
  fakes_.push_back(silent);
  auto o = options(silent->port());
  o.connect_timeout = 150ms;
  Handle c = make_client(o);
  ASSERT_TRUE(run_until([&] { return silent->accepted() >= 3; }));
  EXPECT_EQ(c.probe->count(State::kReady), 0u);
  EXPECT_GE(c->stats().reconnects, 2u);
  ASSERT_GE(c.probe->count(State::kDisconnected), 2u);
  std::string why;
  for (const auto& [s, w] : c.probe->states) {
    if (s == State::kDisconnected) why = w;
  }
  EXPECT_EQ(why, "no answer to the handshake within 150 ms");
}

// ---------------------------------------------------------------------------------------------
// close()
// ---------------------------------------------------------------------------------------------

TEST_F(RedisClient, CloseFailsWhatIsInFlightOnceAndNothingRunsAfterwards) {
  RedisServer* server = start_server();
  ASSERT_TRUE(server);
  Handle cmd = ready_client(server->port(), "cmd");
  std::vector<int> calls(20, 0);
  std::vector<int> nulls(20, 0);
  ASSERT_TRUE(cmd->command({"BLPOP", "nothing-comes", "0"}, [&](const rd::Reply* r) {
    ++calls[0];
    nulls[0] += r == nullptr;
  }));
  for (int i = 1; i < 20; ++i) {
    ASSERT_TRUE(cmd->command({"ECHO", std::to_string(i)}, [&, i](const rd::Reply* r) {
      ++calls[i];
      nulls[i] += r == nullptr;
    }));
  }
  run_for(50ms);  // written, and waiting behind the BLPOP
  ASSERT_EQ(cmd->state(), State::kReady);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(calls[i], 0) << i;
  const std::size_t states_before = cmd.probe->states.size();

  cmd->close();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(calls[i], 1) << i;
    EXPECT_EQ(nulls[i], 1) << i;
  }
  EXPECT_EQ(cmd->state(), State::kClosed);
  ASSERT_EQ(cmd.probe->states.size(), states_before + 1);
  EXPECT_EQ(cmd.probe->states.back().first, State::kClosed);
  EXPECT_FALSE(cmd->command({"PING"}, [&](const rd::Reply*) { ++calls[0]; }));
  cmd->start();  // no effect after close()
  cmd->close();  // nor a second close()

  // Nothing more, however long the loop runs, and the client can go.
  std::weak_ptr<rd::Client> gone = cmd.client;
  clients_.erase(std::remove(clients_.begin(), clients_.end(), cmd.client), clients_.end());
  cmd.client.reset();
  run_for(200ms);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(calls[i], 1) << i;
  EXPECT_EQ(cmd.probe->states.size(), states_before + 1);
  EXPECT_TRUE(gone.expired());
}

TEST_F(RedisClient, CloseFromACallbackOfALostConnectionFinishesTheRestOnce) {
  RedisServer* server = start_server();
  ASSERT_TRUE(server);
  Handle c = ready_client(server->port());
  std::vector<int> calls(5, 0);
  ASSERT_TRUE(c->command({"BLPOP", "nothing-comes", "0"}, [&](const rd::Reply* r) {
    ++calls[0];
    if (!r) c->close();  // from inside the failing of the others
  }));
  for (int i = 1; i < 5; ++i) {
    ASSERT_TRUE(c->command({"PING"}, [&, i](const rd::Reply* r) { calls[i] += r ? 100 : 1; }));
  }
  run_for(50ms);
  server->kill_now();
  ASSERT_TRUE(run_until([&] { return calls[0] == 1; }));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(calls[i], 1) << i;
  EXPECT_EQ(c->state(), State::kClosed);
  const auto reconnects = c->stats().reconnects;
  run_for(300ms);  // no reconnect after close(), no callback again
  EXPECT_EQ(c->stats().reconnects, reconnects);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(calls[i], 1) << i;
  ASSERT_FALSE(c.probe->states.empty());
  EXPECT_EQ(c.probe->states.back().first, State::kClosed);
}

}  // namespace
