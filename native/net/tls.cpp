#include "net/tls.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <stdexcept>

#include "log.hpp"
#include "net/worker.hpp"

namespace sidewire {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;

struct TlsTerminator::Context {
  ssl::context ssl{ssl::context::tls_server};
};

namespace {

std::shared_ptr<TlsTerminator::Context> make_context(const TlsConfig& c) {
  auto ctx = std::make_shared<TlsTerminator::Context>();
  ssl::context& s = ctx->ssl;
  boost::system::error_code ec;
  // TLS 1.2 and 1.3 only; no compression, no renegotiation; the server's cipher order.
  s.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                    ssl::context::single_dh_use,
                ec);
  SSL_CTX_set_options(s.native_handle(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  s.use_certificate_chain(asio::buffer(c.cert), ec);
  if (ec) throw std::runtime_error("tls.cert: " + ec.message());
  s.use_private_key(asio::buffer(c.key), ssl::context::pem, ec);
  if (ec) throw std::runtime_error("tls.key: " + ec.message());
  if (SSL_CTX_check_private_key(s.native_handle()) != 1) throw std::runtime_error("tls.key is not the certificate's key");
  // Resumed sessions belong to this server (OpenSSL refuses to resume with client
  // certificates without it).
  static constexpr unsigned char kSessionContext[] = "sidewire";
  SSL_CTX_set_session_id_context(s.native_handle(), kSessionContext, sizeof kSessionContext - 1);
  if (!c.ca.empty()) {
    s.add_certificate_authority(asio::buffer(c.ca), ec);
    if (ec) throw std::runtime_error("tls.ca: " + ec.message());
    s.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
    // The CAs the client is asked for, from the same PEM.
    BIO* bio = BIO_new_mem_buf(c.ca.data(), static_cast<int>(c.ca.size()));
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    if (bio && names) {
      while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        if (X509_NAME* n = X509_NAME_dup(X509_get_subject_name(x))) sk_X509_NAME_push(names, n);
        X509_free(x);
      }
      ERR_clear_error();  // the end of the PEM
      SSL_CTX_set_client_CA_list(s.native_handle(), names);
      names = nullptr;
    }
    if (names) sk_X509_NAME_free(names);
    if (bio) BIO_free(bio);
  }
  // Browsers and Node's clients speak HTTP/1.1 to it: no ALPN answer leaves them on HTTP/1.1.
  return ctx;
}

// One TLS connection: the handshake, then two pumps between the TLS stream and the engine's end
// of a socketpair, until either side ends.
class Pump : public std::enable_shared_from_this<Pump> {
 public:
  Pump(Worker& worker, int fd, std::shared_ptr<TlsTerminator::Context> context, std::string peer,
       std::shared_ptr<const Listener::Route> route)
      : worker_(worker),
        context_(std::move(context)),
        tls_(asio::ip::tcp::socket(worker.io()), context_->ssl),
        inner_(worker.io()),
        timer_(worker.io()),
        peer_(std::move(peer)),
        route_(std::move(route)) {
    boost::system::error_code ec;
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const bool v6 = ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.ss_family == AF_INET6;
    tls_.next_layer().assign(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
    if (ec) ::close(fd);
  }

  void start() {
    if (!tls_.next_layer().is_open()) return;
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::milliseconds(TlsTerminator::kHandshakeTimeoutMs));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->handshaken_) return;
      log_conn(spdlog::level::info, "connection", 0, self->peer_, "tls handshake timeout", "no TLS handshake within {} ms, closing",
               TlsTerminator::kHandshakeTimeoutMs);
      self->close_all();
    });
    tls_.async_handshake(ssl::stream_base::server, [self](const boost::system::error_code& ec) {
      self->timer_.cancel();
      if (ec || SSL_is_init_finished(self->tls_.native_handle()) != 1) {
        log_conn(spdlog::level::debug, "connection", 0, self->peer_, "tls handshake failed", "TLS handshake failed: {}",
                 ec ? ec.message() : std::string("not finished"));
        return self->close_all();
      }
      self->handshaken_ = true;
      self->connect_inner();
    });
  }

 private:
  void connect_inner() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      log().error("TLS connection from {}: socketpair failed: {}; closing", peer_, std::strerror(errno));
      return close_all();
    }
    boost::system::error_code ec;
    inner_.assign(asio::local::stream_protocol(), pair[0], ec);
    if (ec) {
      ::close(pair[0]);
      ::close(pair[1]);
      return close_all();
    }
    up_ = std::make_unique<Buffer>();
    down_ = std::make_unique<Buffer>();
    // The other end is an accepted connection like any: sniffed, then the engine's or Node's.
    sniff(worker_, pair[1], route_, Listener::Origin{peer_, true});
    read_tls();
    read_inner();
  }

  // Client → engine: decrypted records written to the socketpair.
  void read_tls() {
    auto self = shared_from_this();
    tls_.async_read_some(asio::buffer(*up_), [self](const boost::system::error_code& ec, std::size_t n) {
      if (ec || n == 0) return self->end_up();
      asio::async_write(self->inner_, asio::buffer(self->up_->data(), n),
                        [self](const boost::system::error_code& ec2, std::size_t) {
                          if (ec2) return self->close_all();
                          self->read_tls();
                        });
    });
  }

  // Engine → client: what the plain side wrote, encrypted.
  void read_inner() {
    auto self = shared_from_this();
    inner_.async_read_some(asio::buffer(*down_), [self](const boost::system::error_code& ec, std::size_t n) {
      if (ec || n == 0) return self->end_down();
      asio::async_write(self->tls_, asio::buffer(self->down_->data(), n),
                        [self](const boost::system::error_code& ec2, std::size_t) {
                          if (ec2) return self->close_all();
                          self->read_inner();
                        });
    });
  }

  // The client closed (or failed): the plain side sees its end of the stream.
  void end_up() {
    boost::system::error_code ignored;
    inner_.shutdown(asio::socket_base::shutdown_send, ignored);
    up_done_ = true;
    if (down_done_) close_all();
  }

  // The plain side closed, and everything it wrote went out: the connection closes (without
  // waiting for the client's close_notify; HTTP and WebSocket end their messages themselves).
  void end_down() {
    down_done_ = true;
    close_all();
  }

  void close_all() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    timer_.cancel();
    inner_.close(ignored);
    tls_.next_layer().shutdown(asio::socket_base::shutdown_both, ignored);
    tls_.next_layer().close(ignored);
  }

  Worker& worker_;
  std::shared_ptr<TlsTerminator::Context> context_;  // the one it shook hands with: a reload leaves it
  ssl::stream<asio::ip::tcp::socket> tls_;
  asio::local::stream_protocol::socket inner_;
  asio::steady_timer timer_;
  std::string peer_;
  std::shared_ptr<const Listener::Route> route_;
  // Made after the handshake: a connection that never finishes one holds only OpenSSL's state.
  using Buffer = std::array<char, TlsTerminator::kBufferSize>;
  std::unique_ptr<Buffer> up_;
  std::unique_ptr<Buffer> down_;
  bool handshaken_ = false;
  bool up_done_ = false;
  bool down_done_ = false;
  bool closed_ = false;
};

}  // namespace

TlsTerminator::TlsTerminator(const TlsConfig& config) : context_(make_context(config)) {}
TlsTerminator::~TlsTerminator() = default;

void TlsTerminator::reload(const TlsConfig& config) {
  std::shared_ptr<Context> fresh = make_context(config);
  std::lock_guard lock(mutex_);
  context_ = std::move(fresh);
}

std::shared_ptr<TlsTerminator::Context> TlsTerminator::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

void TlsTerminator::start(Worker& worker, int fd, std::string peer, std::shared_ptr<const Listener::Route> route) {
  std::make_shared<Pump>(worker, fd, current(), std::move(peer), std::move(route))->start();
}

}  // namespace sidewire
