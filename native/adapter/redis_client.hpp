// A Redis client for the cluster adapter: one TCP connection, driven by Asio on an io_context the
// caller runs (an engine I/O thread), that pipelines commands, keeps subscriptions across
// reconnects and reconnects with backoff until it is closed. hiredis does the protocol only (its
// reply reader and command formatter); the socket is ours, so the client lives on the engine's own
// event loop instead of a thread of its own.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace sidewire::redis {

struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username, password;  // AUTH [username] password on connect when password is set
  int db = 0;                       // SELECT db on connect when not 0
  // redis://[[username][:password]@]host[:port][/db] (also "host:port" bare; IPv6 in [brackets];
  // percent-decoding of user/password). rediss:// (TLS), unix sockets, query strings and anything
  // else malformed throw std::invalid_argument saying what is wrong; the message never contains
  // the password.
  static Endpoint parse_url(std::string_view url);
  std::string describe() const;  // [user@]host:port/db without the password, for logs
};

struct Reply {  // an owned copy of a hiredis reply tree
  enum class Type : std::uint8_t { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string str;              // kString, kStatus, kError
  long long integer = 0;        // kInteger
  std::vector<Reply> elements;  // kArray
};

// kDisconnected: not started yet, or waiting for the next attempt after a failure or a loss.
enum class State : std::uint8_t { kConnecting, kReady, kDisconnected, kClosed };
const char* state_name(State state);  // "connecting", "ready", "disconnected", "closed"

struct ClientOptions {
  Endpoint endpoint;
  std::string name = "redis";  // in log lines ("pub", "sub")
  // Resolving, connecting and the handshake (AUTH, SELECT, PING) together.
  std::chrono::milliseconds connect_timeout{5000};
  // The delay before the next attempt doubles from min to max, each a random value in its upper
  // half so that many clients cut off together do not come back together; back to min once ready.
  std::chrono::milliseconds min_backoff{100}, max_backoff{5000};
  // Bytes of commands queued while not ready (Redis away). Past it a command is dropped and
  // counted; so is any single command bigger than it.
  std::size_t max_pending_bytes = 8u << 20;
  // While ready: bytes of commands waiting behind a write (a burst of large publishes in one turn
  // of the loop, a Redis that reads slowly). Only a Redis that stops reading while connected
  // fills it; past it commands are dropped and counted, as above.
  std::size_t max_write_bytes = 256u << 20;
  // A reply that has taken this many bytes without being complete is treated as a protocol error:
  // this hiredis buffers a bulk string of any announced length, and an array's elements as they
  // come, so without it a bad peer could make memory grow without bound.
  std::size_t max_reply_bytes = 512u << 20;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // nullptr: the connection was lost (or closed) before the reply came. A reply is valid during
  // the call only.
  using Callback = std::function<void(const Reply* reply)>;
  // kind: "message" | "pmessage" | "smessage"; pattern is empty except for pmessage.
  using MessageHandler = std::function<void(std::string_view kind, std::string_view pattern, std::string_view channel,
                                            std::string_view payload)>;
  using StateHandler = std::function<void(State state, const std::string& why)>;

  static std::shared_ptr<Client> create(boost::asio::io_context& io, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Everything below is called on the io_context's thread only (one thread runs it: there is no
  // strand). Pending operations hold the client until they complete: close() it, don't just drop it.

  void start();  // connect; on any failure or loss, reconnect with backoff until close()
  // For good: cancels timers, closes the socket, fails pending callbacks with nullptr (once each,
  // during this call), state kClosed. No callback or handler runs afterwards; the handlers are
  // released here, so one that holds the client does not keep it alive.
  void close();

  // Queues a command; sent at once when ready (everything queued in one turn of the loop goes out
  // in one write), else kept (bounded by max_pending_bytes) and sent after the next connect, in
  // order. Returns false when it was dropped: over the bound, closed, empty, or one that would put
  // the connection out of step with the replies we expect ((un)subscribe commands, which go
  // through the functions below, MONITOR, RESET). A dropped command's callback is never called.
  // cb may be empty.
  bool command(std::vector<std::string> args, Callback cb = {});

  // Subscriptions are remembered and sent again after every reconnect. A client that has any is a
  // subscriber connection (RESP2 pub/sub mode): use a separate Client for ordinary commands.
  // Messages go to the message handler; after an unsubscribe, none for that channel or pattern is
  // delivered even if the server had already sent it. Subscribing twice is one subscription.
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);
  void psubscribe(const std::string& pattern);
  void punsubscribe(const std::string& pattern);
  void ssubscribe(const std::string& channel);  // Redis 7 sharded pub/sub
  void sunsubscribe(const std::string& channel);

  void on_message(MessageHandler h);
  // Every transition; each is also logged (info for ready, warn for a lost connection or a failed
  // attempt, debug for connecting).
  void on_state(StateHandler h);
  State state() const { return state_; }

  struct Stats {
    std::uint64_t connects = 0;       // times the client became ready
    std::uint64_t reconnects = 0;     // attempts after the first: retries and reconnections
    std::uint64_t dropped = 0;        // commands refused by command() (see above)
    std::uint64_t protocol_errors = 0;
    std::uint64_t confirmations = 0;  // (un)subscribe confirmations received and swallowed
    std::uint64_t messages = 0;       // messages given to the handler
    std::uint64_t writes = 0;         // writes to the socket: commands / writes is the pipelining factor
    std::size_t pending_bytes = 0;    // as bounded by max_pending_bytes
  };
  Stats stats() const;

 private:
  struct Link;  // one connection attempt and, once it succeeds, the connection: socket, reader, buffers
  enum class Sent : std::uint8_t { kCommand, kAuth, kSelect, kPing, kConfirmation };
  struct InFlight {  // a command written (or about to be), waiting for its reply
    Sent what;
    Callback cb;
    std::string subject;  // for kConfirmation: what was (un)subscribed, for the log
  };
  struct Queued {  // a command held while not ready
    std::string bytes;
    Callback cb;
  };
  enum class Subscription : std::uint8_t { kChannel, kPattern, kShardChannel };

  Client(boost::asio::io_context& io, ClientOptions options);

  void connect();
  void on_connected(const std::shared_ptr<Link>& link);
  void become_ready();
  void drop(const std::string& why);
  std::chrono::milliseconds next_backoff();
  void set_state(State state, const std::string& why);

  bool current(const std::shared_ptr<Link>& link) const { return !closed_ && link && link == link_; }
  void send(std::string bytes, InFlight entry);
  void schedule_flush();
  void flush();
  void start_read(const std::shared_ptr<Link>& link);
  void on_read(const std::shared_ptr<Link>& link, std::size_t n);
  void on_reply(Reply reply);
  bool on_pubsub(const Reply& reply);
  void on_handshake_reply(const InFlight& sent, const Reply& reply);
  void protocol_error(const std::string& what);
  void deliver(std::string_view kind, std::string_view pattern, std::string_view channel, std::string_view payload);
  void fail_callbacks(std::deque<InFlight>& from);

  bool subscriber() const;
  void change_subscription(Subscription kind, const std::string& name, bool on);
  void send_subscription(Subscription kind, const std::string& name, bool on);

  template <typename F>
  void guarded(const char* where, F&& f) noexcept;
  void internal_error(const char* where, const char* what) noexcept;

  boost::asio::io_context& io_;
  ClientOptions options_;
  std::string label_;  // "redis pub (127.0.0.1:6379/0)", for the log

  State state_ = State::kDisconnected;
  bool started_ = false;
  bool closed_ = false;
  std::shared_ptr<Link> link_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer backoff_timer_;
  unsigned backoff_step_ = 0;
  std::minstd_rand jitter_;
  std::chrono::milliseconds retry_in_{0};
  std::string last_failure_;  // a failure like the last one is logged at debug level only

  std::string out_;  // written by the next flush
  bool flush_posted_ = false;
  std::deque<InFlight> in_flight_;
  std::deque<InFlight> failing_;  // being failed with nullptr: close() from one of them finishes the rest
  std::size_t confirmations_due_ = 0;
  std::deque<Queued> queued_;
  std::size_t queued_bytes_ = 0;
  bool dropping_ = false;  // a drop was logged; the next one is not, until a command is accepted again

  std::unordered_set<std::string> channels_, patterns_, shard_channels_;

  // Shared, so that a handler that replaces itself or closes the client is not destroyed while it runs.
  std::shared_ptr<const MessageHandler> message_handler_;
  std::shared_ptr<const StateHandler> state_handler_;
  Stats stats_;
};

}  // namespace sidewire::redis
