#include "adapter/redis_client.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <stdexcept>

#include "log.hpp"

namespace sidewire::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kReadBufferSize = 64 * 1024;
// A big write's buffer is given back instead of kept for the next one.
constexpr std::size_t kKeepWriteCapacity = 256 * 1024;

[[noreturn]] void bad_url(const std::string& what) { throw std::invalid_argument("invalid Redis URL: " + what); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, const char* part) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) bad_url(std::string("the ") + part + " has a '%' that is not followed by two hex digits");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Names, IPv4 and (inside the brackets) IPv6 with a zone: anything else would only fail later,
// in the resolver, with a less helpful message.
bool plausible_host(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == ':' || c == '%';
  });
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool equals_ci(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The formatted command, or "" if hiredis cannot format it (out of memory, or over 2 GiB: its
// lengths are ints).
std::string format_command(const std::vector<std::string>& args) {
  if (args.empty() || args.size() > static_cast<std::size_t>(INT_MAX / 2)) return {};
  std::size_t total = 0;
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& a : args) {
    total += a.size() + 32;
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  if (total > static_cast<std::size_t>(INT_MAX / 2)) return {};
  char* cmd = nullptr;
  const int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lengths.data());
  if (n < 0 || !cmd) return {};
  std::string out(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  return out;
}

Reply copy_reply(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) {
        out.elements.push_back(r.element[i] ? copy_reply(*r.element[i]) : Reply{});
      }
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

bool is_confirmation(std::string_view kind) {
  return kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" || kind == "punsubscribe" ||
         kind == "ssubscribe" || kind == "sunsubscribe";
}

// Commands whose replies do not come one per command, or that undo what the client set up on
// connect (AUTH, SELECT, subscriptions) behind its back.
bool breaks_reply_order(std::string_view name) {
  for (std::string_view c : {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
                             "monitor", "reset"}) {
    if (equals_ci(name, c)) return true;
  }
  return false;
}

constexpr const char* kVerbs[3][2] = {
    {"UNSUBSCRIBE", "SUBSCRIBE"},
    {"PUNSUBSCRIBE", "PSUBSCRIBE"},
    {"SUNSUBSCRIBE", "SSUBSCRIBE"},
};

}  // namespace

Endpoint Endpoint::parse_url(std::string_view url) {
  Endpoint e;
  if (url.empty()) bad_url("empty");
  std::string_view rest = url;
  bool bare = true;
  if (const auto scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
    const std::string scheme = lowercase(rest.substr(0, scheme_end));
    if (scheme == "rediss") {
      throw std::invalid_argument("rediss:// (Redis over TLS) is not supported: use redis://, through a TLS tunnel if needed");
    }
    if (scheme == "unix" || scheme == "redis+unix" || scheme == "redis-socket") {
      throw std::invalid_argument("unix sockets (" + scheme + "://) are not supported: use redis://host:port");
    }
    if (scheme != "redis") bad_url("unknown scheme \"" + scheme + "://\" (expected redis://)");
    rest.remove_prefix(scheme_end + 3);
    bare = false;
  } else if (rest.front() == '/') {
    throw std::invalid_argument("unix sockets are not supported (a path was given): use redis://host:port");
  }

  // The values of the URL are never quoted back in the errors: a password that was not
  // percent-encoded would end up in the log.
  const auto authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);

  std::string_view hostport = authority;
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    e.username = percent_decode(userinfo.substr(0, colon), "username");
    if (colon != std::string_view::npos) e.password = percent_decode(userinfo.substr(colon + 1), "password");
  }

  std::string_view host = hostport;
  std::string_view port;
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) bad_url("an IPv6 address opened with '[' is not closed with ']'");
    host = hostport.substr(1, close - 1);
    if (host.empty()) bad_url("empty IPv6 address in []");
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url("only :port may follow an IPv6 address in []");
      port = after.substr(1);
      has_port = true;
    }
  } else if (const auto colon = hostport.find(':'); colon != std::string_view::npos) {
    if (hostport.find(':', colon + 1) != std::string_view::npos) {
      // "::1" alone is unambiguous; with anything around it, the port could not be told apart.
      if (!bare || hostport.size() != url.size()) bad_url("an IPv6 address must be in brackets, as in redis://[::1]:6379");
    } else {
      host = hostport.substr(0, colon);
      port = hostport.substr(colon + 1);
      has_port = true;
    }
  }
  if (!plausible_host(host)) bad_url("the host has characters a host name or address cannot have");
  if (!host.empty()) e.host = std::string(host);
  if (has_port) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (!all_digits(port) || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      bad_url("the port must be a number from 1 to 65535");
    }
    e.port = static_cast<std::uint16_t>(value);
  }

  if (!tail.empty() && tail.front() == '/') {
    tail.remove_prefix(1);
    const auto end = tail.find_first_of("?#");
    const std::string_view db = tail.substr(0, end);
    tail = end == std::string_view::npos ? std::string_view() : tail.substr(end);
    if (!db.empty()) {
      int value = 0;
      const auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), value);
      if (!all_digits(db) || ec != std::errc() || p != db.data() + db.size()) {
        bad_url("the database must be a number, as in redis://host:6379/2");
      }
      e.db = value;
    }
  }
  if (!tail.empty()) bad_url(tail.front() == '?' ? "query parameters (?...) are not supported" : "a fragment (#...) is not supported");
  return e;
}

std::string Endpoint::describe() const {
  std::string out;
  if (!username.empty()) out += username + "@";
  if (host.find(':') != std::string::npos) {
    out += "[" + host + "]";
  } else {
    out += host;
  }
  out += ":" + std::to_string(port) + "/" + std::to_string(db);
  return out;
}

const char* state_name(State state) {
  switch (state) {
    case State::kConnecting: return "connecting";
    case State::kReady: return "ready";
    case State::kDisconnected: return "disconnected";
    case State::kClosed: return "closed";
  }
  return "?";
}

// One attempt and, once it succeeds, the connection. A new attempt gets a new Link: a completion
// of the old one, still queued, finds it is no longer the client's and does nothing, and the
// buffers it may still be using stay alive with it.
struct Client::Link {
  explicit Link(asio::io_context& io) : socket(io), resolver(io), reader(redisReaderCreate(), &redisReaderFree) {
    if (!reader) throw std::bad_alloc();
  }
  tcp::socket socket;
  tcp::resolver resolver;
  std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader;
  std::unique_ptr<char[]> read_buffer = std::make_unique<char[]>(kReadBufferSize);
  std::string writing;  // the bytes of the write in progress
  bool write_in_progress = false;
  bool connected = false;    // TCP connected; the handshake may still be going on
  std::size_t reply_bytes = 0;  // bytes the reply being read has taken so far
};

std::shared_ptr<Client> Client::create(asio::io_context& io, ClientOptions options) {
  return std::shared_ptr<Client>(new Client(io, std::move(options)));
}

Client::Client(asio::io_context& io, ClientOptions options)
    : io_(io), options_(std::move(options)), connect_timer_(io), backoff_timer_(io), jitter_(std::random_device{}()) {
  // A zero minimum would retry in a busy loop.
  options_.min_backoff = std::max(options_.min_backoff, std::chrono::milliseconds(1));
  options_.max_backoff = std::max(options_.max_backoff, options_.min_backoff);
  label_ = "redis " + options_.name + " (" + options_.endpoint.describe() + ")";
}

Client::~Client() = default;

void Client::on_message(MessageHandler h) {
  message_handler_ = h ? std::make_shared<const MessageHandler>(std::move(h)) : nullptr;
}

void Client::on_state(StateHandler h) {
  state_handler_ = h ? std::make_shared<const StateHandler>(std::move(h)) : nullptr;
}

Client::Stats Client::stats() const {
  Stats s = stats_;
  s.pending_bytes = queued_bytes_ + out_.size();
  return s;
}

template <typename F>
void Client::guarded(const char* where, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    internal_error(where, e.what());
  } catch (...) {
    internal_error(where, "a non-standard exception");
  }
}

void Client::internal_error(const char* where, const char* what) noexcept {
  try {
    log().error("{}: internal error in {} ({}); dropping the connection", label_, where, what);
    drop(std::string("internal error: ") + what);
  } catch (...) {
    // Nothing sensible is left to do, and nothing may leave a completion handler.
  }
}

// ---------------------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------------------

void Client::start() {
  if (closed_ || started_) return;
  started_ = true;
  connect();
}

void Client::connect() {
  auto link = std::make_shared<Link>(io_);
  link_ = link;
  out_.clear();
  confirmations_due_ = 0;
  set_state(State::kConnecting, "");
  if (!current(link)) return;  // the state handler closed the client

  auto self = shared_from_this();
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([self, link](const error_code& ec) {
    if (ec || !self->current(link) || self->state_ != State::kConnecting) return;
    self->guarded("the connect timer", [&] {
      const auto ms = self->options_.connect_timeout.count();
      self->drop(link->connected ? fmt::format("no answer to the handshake within {} ms", ms)
                                 : fmt::format("not connected within {} ms", ms));
    });
  });
  const Endpoint& ep = options_.endpoint;
  link->resolver.async_resolve(
      ep.host, std::to_string(ep.port), tcp::resolver::numeric_service,
      [self, link](const error_code& ec, const tcp::resolver::results_type& results) {
        if (!self->current(link)) return;
        self->guarded("resolve", [&] {
          if (ec) return self->drop("cannot resolve " + self->options_.endpoint.host + ": " + ec.message());
          asio::async_connect(link->socket, results, [self, link](const error_code& ec, const tcp::endpoint&) {
            if (!self->current(link)) return;
            self->guarded("connect", [&] {
              if (ec) return self->drop("cannot connect: " + ec.message());
              self->on_connected(link);
            });
          });
        });
      });
}

void Client::on_connected(const std::shared_ptr<Link>& link) {
  link->connected = true;
  error_code ignored;
  link->socket.set_option(tcp::no_delay(true), ignored);
  link->socket.set_option(asio::socket_base::keep_alive(true), ignored);
  start_read(link);
  // The handshake goes out in one write; the client is ready when PING answers, which also tells
  // a server still loading its data (an error reply) from one that can serve.
  const Endpoint& ep = options_.endpoint;
  if (!ep.password.empty()) {
    send(format_command(ep.username.empty() ? std::vector<std::string>{"AUTH", ep.password}
                                            : std::vector<std::string>{"AUTH", ep.username, ep.password}),
         {Sent::kAuth, {}, {}});
  }
  if (ep.db != 0) send(format_command({"SELECT", std::to_string(ep.db)}), {Sent::kSelect, {}, {}});
  send(format_command({"PING"}), {Sent::kPing, {}, {}});
}

void Client::on_handshake_reply(const InFlight& sent, const Reply& reply) {
  if (reply.type == Reply::Type::kError) {
    switch (sent.what) {
      case Sent::kAuth:
        return drop("AUTH refused (" + reply.str + "): check the username and password");
      case Sent::kSelect:
        return drop("SELECT " + std::to_string(options_.endpoint.db) + " refused (" + reply.str + ")");
      default:
        if (reply.str.rfind("NOAUTH", 0) == 0) return drop("the server wants a password (" + reply.str + ")");
        // LOADING, MASTERDOWN and the like: a server that cannot serve yet.
        return drop("PING refused (" + reply.str + ")");
    }
  }
  if (sent.what == Sent::kPing) become_ready();
}

void Client::become_ready() {
  connect_timer_.cancel();
  backoff_step_ = 0;
  last_failure_.clear();
  ++stats_.connects;
  // What was subscribed before comes first, then what was queued, in order; all of it leaves in
  // the next write, and anything the state handler sends goes after it.
  for (const auto& c : channels_) send_subscription(Subscription::kChannel, c, true);
  for (const auto& p : patterns_) send_subscription(Subscription::kPattern, p, true);
  for (const auto& c : shard_channels_) send_subscription(Subscription::kShardChannel, c, true);
  for (Queued& q : queued_) {
    out_ += q.bytes;
    in_flight_.push_back({Sent::kCommand, std::move(q.cb), {}});
  }
  queued_.clear();
  queued_bytes_ = 0;
  schedule_flush();
  set_state(State::kReady, "");
}

void Client::drop(const std::string& why) {
  if (closed_) return;
  if (auto link = std::move(link_)) {
    error_code ignored;
    link->resolver.cancel();
    link->socket.close(ignored);
  }
  connect_timer_.cancel();
  out_.clear();
  confirmations_due_ = 0;

  retry_in_ = next_backoff();
  backoff_timer_.expires_after(retry_in_);
  backoff_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_ || self->link_) return;
    self->guarded("reconnect", [&] {
      ++self->stats_.reconnects;
      self->connect();
    });
  });
  set_state(State::kDisconnected, why);
  fail_callbacks(in_flight_);
}

std::chrono::milliseconds Client::next_backoff() {
  auto base = options_.min_backoff;
  for (unsigned i = 0; i < backoff_step_ && base < options_.max_backoff; ++i) base *= 2;
  base = std::min(base, options_.max_backoff);
  if (base < options_.max_backoff) ++backoff_step_;
  std::uniform_int_distribution<long long> upper_half(base.count() - base.count() / 2, base.count());
  return std::chrono::milliseconds(upper_half(jitter_));
}

void Client::set_state(State state, const std::string& why) {
  const State before = state_;
  state_ = state;
  switch (state) {
    case State::kConnecting:
      log().debug("{}: connecting", label_);
      break;
    case State::kReady:
      log().info("{}: ready", label_);
      break;
    case State::kDisconnected:
      if (before == State::kReady) {
        log().warn("{}: connection lost ({}); reconnecting in {} ms", label_, why, retry_in_.count());
      } else if (why != last_failure_) {
        log().warn("{}: {}; retrying in {} ms (the same failure again is logged at debug level)", label_, why,
                   retry_in_.count());
      } else {
        log().debug("{}: {}; retrying in {} ms", label_, why, retry_in_.count());
      }
      last_failure_ = before == State::kReady ? std::string() : why;
      break;
    case State::kClosed:
      log().info("{}: closed", label_);
      break;
  }
  if (auto handler = state_handler_) {
    try {
      (*handler)(state, why);
    } catch (const std::exception& e) {
      log().error("{}: the state handler threw ({}); ignored", label_, e.what());
    } catch (...) {
      log().error("{}: the state handler threw; ignored", label_);
    }
  }
}

void Client::close() {
  if (closed_) return;
  closed_ = true;
  connect_timer_.cancel();
  backoff_timer_.cancel();
  if (auto link = std::move(link_)) {
    error_code ignored;
    link->resolver.cancel();
    link->socket.close(ignored);
  }
  out_.clear();
  confirmations_due_ = 0;
  channels_.clear();
  patterns_.clear();
  shard_channels_.clear();
  std::deque<InFlight> unsent;
  for (Queued& q : queued_) unsent.push_back({Sent::kCommand, std::move(q.cb), {}});
  queued_.clear();
  queued_bytes_ = 0;

  set_state(State::kClosed, "closed");
  fail_callbacks(in_flight_);
  fail_callbacks(unsent);
  message_handler_.reset();
  state_handler_.reset();
}

void Client::fail_callbacks(std::deque<InFlight>& from) {
  for (InFlight& e : from) {
    if (e.what == Sent::kCommand && e.cb) failing_.push_back(std::move(e));
  }
  from.clear();
  // Each is taken off before it runs: one that calls close() (which fails the rest) or drops the
  // connection again never sees a callback twice.
  while (!failing_.empty()) {
    Callback cb = std::move(failing_.front().cb);
    failing_.pop_front();
    try {
      cb(nullptr);
    } catch (const std::exception& e) {
      log().error("{}: a reply callback threw ({}); ignored", label_, e.what());
    } catch (...) {
      log().error("{}: a reply callback threw; ignored", label_);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Commands and subscriptions
// ---------------------------------------------------------------------------------------------

bool Client::command(std::vector<std::string> args, Callback cb) {
  if (closed_) {
    ++stats_.dropped;
    log().debug("{}: a command after close(), dropped", label_);
    return false;
  }
  if (args.empty()) {
    ++stats_.dropped;
    log().error("{}: an empty command, dropped", label_);
    return false;
  }
  if (breaks_reply_order(args[0])) {
    ++stats_.dropped;
    log().error("{}: {} through command() would put the replies out of step, dropped (use subscribe() and the like)",
                label_, args[0]);
    return false;
  }
  std::size_t size = 0;
  for (const std::string& a : args) size += a.size();
  // Connected, the bound is the write backlog's; away, the queue's (the bytes kept for later).
  const bool ready = state_ == State::kReady;
  const std::size_t bound = ready ? options_.max_write_bytes : options_.max_pending_bytes;
  std::string bytes = size <= bound ? format_command(args) : std::string();
  const std::size_t pending = ready ? out_.size() : queued_bytes_ + out_.size();
  if (bytes.empty() || pending + bytes.size() > bound) {
    ++stats_.dropped;
    if (!dropping_) {
      dropping_ = true;
      log().warn("{}: commands over {} bytes not yet sent (while {}): dropping them until there is room",
                 label_, bound, state_name(state_));
    }
    return false;
  }
  dropping_ = false;
  if (state_ == State::kReady) {
    send(std::move(bytes), {Sent::kCommand, std::move(cb), {}});
  } else {
    queued_bytes_ += bytes.size();
    queued_.push_back({std::move(bytes), std::move(cb)});
  }
  return true;
}

void Client::subscribe(const std::string& channel) { change_subscription(Subscription::kChannel, channel, true); }
void Client::unsubscribe(const std::string& channel) { change_subscription(Subscription::kChannel, channel, false); }
void Client::psubscribe(const std::string& pattern) { change_subscription(Subscription::kPattern, pattern, true); }
void Client::punsubscribe(const std::string& pattern) { change_subscription(Subscription::kPattern, pattern, false); }
void Client::ssubscribe(const std::string& channel) { change_subscription(Subscription::kShardChannel, channel, true); }
void Client::sunsubscribe(const std::string& channel) {
  change_subscription(Subscription::kShardChannel, channel, false);
}

void Client::change_subscription(Subscription kind, const std::string& name, bool on) {
  if (closed_) return;
  auto& names = kind == Subscription::kChannel ? channels_ : kind == Subscription::kPattern ? patterns_ : shard_channels_;
  const bool changed = on ? names.insert(name).second : names.erase(name) > 0;
  // Not ready: the next connect sends whatever the sets hold then.
  if (changed && state_ == State::kReady) send_subscription(kind, name, on);
}

void Client::send_subscription(Subscription kind, const std::string& name, bool on) {
  const char* verb = kVerbs[static_cast<int>(kind)][on ? 1 : 0];
  // One name per command: an error (a NOPERM from an ACL, a CROSSSLOT) answers a whole command
  // with one reply, where success answers each name with one; with one name both are one reply.
  std::string bytes = format_command({verb, name});
  if (bytes.empty()) {  // a name over 1 GiB: sending nothing keeps the replies in step
    log().error("{}: cannot format {} for a name of {} bytes", label_, verb, name.size());
    return;
  }
  ++confirmations_due_;
  send(std::move(bytes), {Sent::kConfirmation, {}, std::string(verb) + " " + name});
}

bool Client::subscriber() const {
  return confirmations_due_ > 0 || !channels_.empty() || !patterns_.empty() || !shard_channels_.empty();
}

// ---------------------------------------------------------------------------------------------
// Writing and reading
// ---------------------------------------------------------------------------------------------

void Client::send(std::string bytes, InFlight entry) {
  out_ += bytes;
  in_flight_.push_back(std::move(entry));
  schedule_flush();
}

// Deferred to after the current handler, so that everything sent during one turn of the loop
// leaves in one write.
void Client::schedule_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->guarded("write", [&] { self->flush(); });
  });
}

void Client::flush() {
  const std::shared_ptr<Link> link = link_;
  if (!current(link) || !link->connected || link->write_in_progress || out_.empty()) return;
  link->writing.swap(out_);
  out_.clear();
  link->write_in_progress = true;
  ++stats_.writes;
  asio::async_write(link->socket, asio::buffer(link->writing),
                    [self = shared_from_this(), link](const error_code& ec, std::size_t) {
                      link->write_in_progress = false;
                      if (link->writing.capacity() > kKeepWriteCapacity) {
                        std::string().swap(link->writing);
                      } else {
                        link->writing.clear();
                      }
                      if (!self->current(link)) return;
                      self->guarded("write", [&] {
                        if (ec) return self->drop("write failed: " + ec.message());
                        self->flush();
                      });
                    });
}

void Client::start_read(const std::shared_ptr<Link>& link) {
  link->socket.async_read_some(
      asio::buffer(link->read_buffer.get(), kReadBufferSize),
      [self = shared_from_this(), link](const error_code& ec, std::size_t n) {
        if (!self->current(link)) return;
        self->guarded("read", [&] {
          if (ec) {
            return self->drop(ec == asio::error::eof ? std::string("the server closed the connection")
                                                     : "read failed: " + ec.message());
          }
          self->on_read(link, n);
          if (self->current(link)) self->start_read(link);
        });
      });
}

void Client::on_read(const std::shared_ptr<Link>& link, std::size_t n) {
  redisReader* reader = link->reader.get();
  if (redisReaderFeed(reader, link->read_buffer.get(), n) != REDIS_OK) return protocol_error(reader->errstr);
  link->reply_bytes += n;
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
      return protocol_error(reader->errstr[0] ? reader->errstr : "unreadable reply");
    }
    if (!raw) break;
    const std::unique_ptr<void, decltype(&freeReplyObject)> owned(raw, &freeReplyObject);
    // What is left in the reader's buffer belongs to the replies after this one.
    link->reply_bytes = reader->len - reader->pos;
    Reply reply = copy_reply(*static_cast<const redisReply*>(raw));
    on_reply(std::move(reply));
    if (!current(link)) return;  // a callback closed the client, or the reply ended the connection
  }
  if (link->reply_bytes > options_.max_reply_bytes) {
    protocol_error(fmt::format("a reply still incomplete after {} bytes", link->reply_bytes));
  }
}

void Client::protocol_error(const std::string& what) {
  ++stats_.protocol_errors;
  log().error("{}: protocol error ({}); dropping the connection", label_, what);
  drop("protocol error: " + what);
}

void Client::on_reply(Reply reply) {
  if (subscriber() && on_pubsub(reply)) return;
  if (in_flight_.empty()) return protocol_error("a reply that no command asked for");
  InFlight sent = std::move(in_flight_.front());
  in_flight_.pop_front();
  switch (sent.what) {
    case Sent::kCommand:
      if (!sent.cb) return;
      try {
        sent.cb(&reply);
      } catch (const std::exception& e) {
        log().error("{}: a reply callback threw ({}); ignored", label_, e.what());
      } catch (...) {
        log().error("{}: a reply callback threw; ignored", label_);
      }
      return;
    case Sent::kConfirmation:
      // Not a confirmation (on_pubsub took those): the server refused this one.
      --confirmations_due_;
      log().warn("{}: {} refused: {}", label_, sent.subject,
                 reply.type == Reply::Type::kError ? reply.str : std::string("unexpected reply"));
      return;
    default:
      return on_handshake_reply(sent, reply);
  }
}

// Pushes on a subscriber connection: messages, and the confirmations of what we (un)subscribed,
// which come in order with the other replies but answer no callback.
bool Client::on_pubsub(const Reply& reply) {
  const auto& e = reply.elements;
  if (reply.type != Reply::Type::kArray || e.size() < 3 || e[0].type != Reply::Type::kString) return false;
  const std::string& kind = e[0].str;
  if (kind == "message" && e.size() == 3) {
    if (channels_.count(e[1].str)) deliver(kind, {}, e[1].str, e[2].str);
    return true;
  }
  if (kind == "pmessage" && e.size() == 4) {
    if (patterns_.count(e[1].str)) deliver(kind, e[1].str, e[2].str, e[3].str);
    return true;
  }
  if (kind == "smessage" && e.size() == 3) {
    if (shard_channels_.count(e[1].str)) deliver(kind, {}, e[1].str, e[2].str);
    return true;
  }
  if (!is_confirmation(kind) || e.size() != 3) return false;
  ++stats_.confirmations;
  if (!in_flight_.empty() && in_flight_.front().what == Sent::kConfirmation) {
    in_flight_.pop_front();
    --confirmations_due_;
  } else {
    // A cluster node that lost a slot unsubscribes its shard channels by itself.
    log().warn("{}: the server sent \"{} {}\" on its own", label_, kind, e[1].str);
  }
  return true;
}

void Client::deliver(std::string_view kind, std::string_view pattern, std::string_view channel,
                     std::string_view payload) {
  ++stats_.messages;
  auto handler = message_handler_;
  if (!handler) return;
  try {
    (*handler)(kind, pattern, channel, payload);
  } catch (const std::exception& e) {
    log().error("{}: the message handler threw ({}); ignored", label_, e.what());
  } catch (...) {
    log().error("{}: the message handler threw; ignored", label_);
  }
}

}  // namespace sidewire::redis
