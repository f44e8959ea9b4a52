// What a hostile client can do to the engine, one finding at a time: each test drives the attack
// over loopback and asserts the protocol's own answer, the limit's counter, and that the engine
// goes on serving everyone else.
#include "engine_fixture.hpp"

#include <nlohmann/json.hpp>

namespace {

std::uint64_t limit_count(const sw::EngineStats& s, const std::string& name) {
  for (const auto& [n, v] : s.limits) {
    if (n == name) return v;
  }
  ADD_FAILURE() << "no limit named " << name;
  return 0;
}

class HostileTest : public EngineTest {
 protected:
  void start_socketio(bool dynamic_namespaces = false, std::uint64_t max_http_buffer_size = 1000000) {
    sw::SocketIoConfig c;
    c.dynamic_namespaces = dynamic_namespaces;
    c.max_http_buffer_size = max_http_buffer_size;
    engine_->configure_socketio(c);
  }

  std::string polling_handshake() {
    const auto open = poll("GET", "/socket.io/?EIO=4&transport=polling");
    if (!open || open->code != 200 || open->data.empty() || open->data[0] != '0') {
      ADD_FAILURE() << "no polling handshake";
      return {};
    }
    return nlohmann::json::parse(open->data.substr(1)).at("sid").get<std::string>();
  }

};

// A client connecting one WebSocket to namespace after namespace of a dynamic parent: past the
// per-connection limit each gets CONNECT_ERROR, the process and the connection live on.
TEST_F(HostileTest, NamespaceFloodOnOneConnectionGetsConnectErrors) {
  start();
  start_socketio(/*dynamic_namespaces=*/true);
  auto c = eio_websocket();
  ASSERT_TRUE(c);
  std::string burst;
  for (int i = 0; i <= 4096; ++i) burst += c->frame(ws::kText, "40/dyn-" + std::to_string(i) + ",");
  ASSERT_TRUE(c->write_all(burst, 20000ms));
  int errors = 0;
  for (;;) {
    auto f = next_packet(*c, 3000ms);
    if (!f) break;
    if (f->payload.rfind("44/dyn-", 0) == 0) {
      EXPECT_NE(f->payload.find("Too many namespaces"), std::string::npos) << f->payload;
      ++errors;
    }
    if (errors == 4097 - 100) break;
  }
  EXPECT_EQ(errors, 4097 - 100);  // the first 100 wait for JS (dynamic namespaces are JS's call)
  EXPECT_GE(limit_count(engine_->stats(), "namespaces"), 3997u);
  // The connection is still served.
  ASSERT_TRUE(c->send_text("40/other,"));
  auto f = next_packet(*c);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload.rfind("44/other,", 0), 0u) << f->payload;
}

// A polling body that is not UTF-8 used to throw from the JSON dump on the I/O thread and stop
// it; now it is a 400 for that session, and the thread serves the next one.
TEST_F(HostileTest, PollingBodyThatIsNotUtf8IsRefusedAndTheThreadGoesOn) {
  start();
  start_socketio(/*dynamic_namespaces=*/true);
  const std::string sid = polling_handshake();
  ASSERT_FALSE(sid.empty());
  const auto r = poll("POST", "/socket.io/?EIO=4&transport=polling&sid=" + sid, "40/dyn-1\xff,");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 400);
  EXPECT_GE(engine_->stats().protocol_errors, 1u);
  // Same thread, next session: answered.
  EXPECT_FALSE(polling_handshake().empty());
  auto c = eio_websocket();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send_text("40"));
  auto f = next_packet(*c);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload.rfind("40{\"sid\":\"", 0), 0u) << f->payload;
  EXPECT_EQ(engine_->stats().internal_errors, 0u);
}

// "#" in the request target: one reader's path is another's query. Refused outright.
TEST_F(HostileTest, FragmentInTheTargetIsRefusedWith400) {
  start();
  add_channel(relay_channel("/ws/fabric", "documentId"));
  for (const std::string target : {"/ws/fabric#?documentId=secret", "/ws/fabric?documentId=a#b", "/ws/fabric?documentId=a b"}) {
    auto c = adopt_raw(upgrade_request(target, new_key()));
    ASSERT_TRUE(c);
    const auto response = c->read_to_eof();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->rfind("HTTP/1.1 400 ", 0), 0u) << target << ": " << *response;
  }
  EXPECT_EQ(engine_->room_size(0, "secret"), 0u);
}

// A repeated room key: authorize would check one value and the engine join another.
TEST_F(HostileTest, RepeatedRoomKeyIsRefusedWith400) {
  start();
  add_channel(relay_channel("/ws/fabric", "documentId"));
  auto c = adopt_raw(upgrade_request("/ws/fabric?documentId=secret&documentId=mine", new_key()));
  ASSERT_TRUE(c);
  const auto response = c->read_to_eof();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->rfind("HTTP/1.1 400 ", 0), 0u) << *response;
  EXPECT_NE(response->find("documentId"), std::string::npos);
  EXPECT_EQ(engine_->room_size(0, "secret"), 0u);
  EXPECT_EQ(engine_->room_size(0, "mine"), 0u);
  // Other keys may repeat.
  auto ok = connect("/ws/fabric?documentId=d1&x=1&x=2");
  ASSERT_TRUE(ok);
  EXPECT_TRUE(wait_until([&] { return engine_->room_size(0, "d1") == 1; }));
}

TEST_F(HostileTest, OversizedTargetAndTooManyHeadersAreRefused) {
  start();
  add_channel(relay_channel("/ws/fabric"));
  auto c = adopt_raw(upgrade_request("/ws/fabric?doc=" + std::string(9000, 'a'), new_key()));
  ASSERT_TRUE(c);
  auto response = c->read_to_eof();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->rfind("HTTP/1.1 414 ", 0), 0u) << response->substr(0, 64);
  auto request = upgrade_request("/ws/fabric", new_key());
  for (int i = 0; i < 200; ++i) request.headers.emplace_back("X-Filler-" + std::to_string(i), "1");
  c = adopt_raw(std::move(request));
  ASSERT_TRUE(c);
  response = c->read_to_eof();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->rfind("HTTP/1.1 431 ", 0), 0u) << response->substr(0, 64);
  const auto stats = engine_->stats();
  EXPECT_EQ(limit_count(stats, "query"), 1u);
  EXPECT_EQ(limit_count(stats, "headers"), 1u);
}

// 50,000 join messages used to take an I/O thread 40 s (joins were linear in the rooms held).
// Past the room limit the connection is closed with 1008; the thread answers others at once.
TEST_F(HostileTest, JoinFloodHitsTheRoomLimit) {
  start();
  auto config = relay_channel("/ws/fabric");
  config.join_messages = true;
  config.max_rooms = 1000;
  add_channel(config);
  auto attacker = connect("/ws/fabric");
  auto other = connect("/ws/fabric?doc=d");
  auto peer = connect("/ws/fabric?doc=d");
  ASSERT_TRUE(attacker && other && peer);
  std::string burst;
  for (int i = 0; i < 50000; ++i) burst += attacker->frame(ws::kText, "{\"join\":\"r" + std::to_string(i) + "\"}");
  ASSERT_TRUE(attacker->write_all(burst, 20000ms));
  EXPECT_TRUE(IsClose(attacker->next_frame(10000ms), ws::kPolicyViolation));
  ASSERT_TRUE(other->send_text("still here"));
  EXPECT_TRUE(IsMessage(peer->next_frame(), ws::kText, "still here"));
  EXPECT_GE(limit_count(engine_->stats(), "rooms"), 1u);
  EXPECT_TRUE(wait_until([&] { return engine_->room_size(0, "r0") == 0; }));  // left every room
}

// 4 M empty pings from a peer that never reads used to pin ~130 MB per connection: each queued
// pong counted its 2 bytes. A queued frame now also counts what it costs to keep.
TEST_F(HostileTest, PingFloodFromAPeerThatNeverReadsIsDropped) {
  start();
  auto config = relay_channel("/ws/fabric");
  config.max_queued_bytes = 1 << 20;
  add_channel(config);
  auto c = connect("/ws/fabric", "", /*client_rcvbuf=*/4096);
  ASSERT_TRUE(c);
  const std::string ping = c->frame(ws::kPing, "");
  std::string burst;
  for (int i = 0; i < 2000; ++i) burst += ping;
  bool dropped = false;
  for (int round = 0; round < 200 && !dropped; ++round) {
    if (!c->write_all(burst, 200ms)) break;  // the engine stopped reading or closed
    dropped = engine_->stats().backpressure_drops > 0;
  }
  EXPECT_TRUE(wait_until([&] { return engine_->stats().backpressure_drops > 0; }));
  EXPECT_GE(limit_count(engine_->stats(), "outgoingQueue"), 1u);
  EXPECT_TRUE(wait_until([&] { return engine_->stats().connections == 0; }));
}

// A polling client that posts pongs but never GETs used to pin every emit.
TEST_F(HostileTest, PollingClientThatNeverFetchesIsDropped) {
  start();
  sw::SocketIoConfig config;
  config.max_queued_bytes = 256 * 1024;
  engine_->configure_socketio(config);
  const std::string sid = polling_handshake();
  ASSERT_FALSE(sid.empty());
  const auto connected = poll("POST", "/socket.io/?EIO=4&transport=polling&sid=" + sid, "40");
  ASSERT_TRUE(connected && connected->code == 200);
  sw::Engine::SioSelection everyone;
  const std::string data = "[\"tick\",\"" + std::string(1000, 'x') + "\"]";
  for (int i = 0; i < 400; ++i) engine_->sio_broadcast(everyone, data, {}, -1, false);
  EXPECT_TRUE(wait_until([&] { return engine_->sio_stats().sessions == 0; }));
  EXPECT_GE(limit_count(engine_->stats(), "outgoingQueue"), 1u);
  const auto late = poll("GET", "/socket.io/?EIO=4&transport=polling&sid=" + sid);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->code, 400);  // the session is gone
}

// The first fragment of a message that never ends used to hold its bytes for ever.
TEST_F(HostileTest, UnfinishedFragmentedMessageTimesOut) {
  start();
  auto config = relay_channel("/ws/fabric");
  config.message_timeout_ms = 300;
  add_channel(config);
  auto c = connect("/ws/fabric");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send(ws::kText, std::string(1000, 'a'), /*fin=*/false));
  EXPECT_TRUE(IsClose(c->next_frame(3000ms), ws::kPolicyViolation));
  EXPECT_EQ(limit_count(engine_->stats(), "unfinishedMessage"), 1u);
}

// Attachments announced by one packet add up to at most maxHttpBufferSize.
TEST_F(HostileTest, AttachmentsOverMaxHttpBufferSizeCloseTheSession) {
  start();
  start_socketio(false, /*max_http_buffer_size=*/10000);
  auto c = eio_websocket();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send_text("40"));
  ASSERT_TRUE(next_packet(*c));
  ASSERT_TRUE(c->send_text("454-[\"up\",{\"_placeholder\":true,\"num\":0}]"));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c->send_binary(std::string(9000, 'b')));
  EXPECT_TRUE(c->wait_eof(5000ms));
  EXPECT_EQ(limit_count(engine_->stats(), "attachments"), 1u);
}

// Backpressure into JS: while the sink is congested, a connection whose messages go to JS is
// not read (its bytes stay in the kernel); once the sink has room, everything arrives, in order.
class CongestibleSink : public RecordingSink {
 public:
  bool congested() const override { return congested_.load(); }
  void set_congested(bool on) {
    congested_ = on;
    if (!on) relieved();
  }

 private:
  std::atomic<bool> congested_{false};
};

TEST_F(HostileTest, CongestedSinkStopsReadingAndReliefResumes) {
  auto sink = std::make_shared<CongestibleSink>();
  sink_ = sink;
  engine_ = std::make_unique<sw::Engine>(sw::EngineOptions{}, sink_);
  const auto channel = add_channel(relay_channel("/ws/fabric"), false, /*hook_message=*/true);
  auto relay_only = add_channel(relay_channel("/ws/quiet"));
  auto c = connect("/ws/fabric");
  auto q1 = connect("/ws/quiet?doc=x");
  auto q2 = connect("/ws/quiet?doc=x");
  ASSERT_TRUE(c && q1 && q2);
  sink->set_congested(true);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(c->send_text("m" + std::to_string(i)));
  // A channel with no JS listener is not held up.
  ASSERT_TRUE(q1->send_text("relayed"));
  EXPECT_TRUE(IsMessage(q2->next_frame(), ws::kText, "relayed"));
  auto messages = [&] {
    return sink->count([&](const Event& e) { return e.type == Event::Type::kMessage && e.channel == channel; });
  };
  std::this_thread::sleep_for(300ms);
  EXPECT_LE(messages(), 1u);  // at most what was read before the flag was seen
  EXPECT_GE(engine_->stats().js_backpressure_pauses, 1u);
  sink->set_congested(false);
  ASSERT_TRUE(wait_until([&] { return messages() == 50; }));
  std::vector<std::string> got;
  for (const auto& e : sink->snapshot()) {
    if (e.type == Event::Type::kMessage && e.channel == channel) got.push_back(e.data);
  }
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i], "m" + std::to_string(i));
  (void)relay_only;
}

// Found by the connection fuzzer: a Socket.IO upgrade that Engine.IO refuses stayed counted as
// an open connection for good.
TEST_F(HostileTest, RefusedEngineIoUpgradesAreNotCountedAsConnections) {
  start();
  start_socketio();
  for (const std::string target : {"/socket.io/?EIO=3&transport=websocket", "/socket.io/?EIO=4&transport=polling",
                                   "/socket.io/?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAAAA"}) {
    auto c = adopt_raw(upgrade_request(target, new_key()));
    ASSERT_TRUE(c);
    const auto response = c->read_to_eof();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->rfind("HTTP/1.1 400 ", 0), 0u) << target;
  }
  EXPECT_TRUE(wait_until([&] { return engine_->stats().connections == 0; })) << engine_->stats().connections;
  EXPECT_EQ(engine_->stats().upgrades_refused, 3u);
}

// Configuration from JS goes through each I/O thread's queue: a re-configure while sessions
// live takes effect for the next handshake, in order with other commands.
TEST_F(HostileTest, ReconfigureReachesTheIoThreadsInOrder) {
  start(2);
  sw::SocketIoConfig config;
  config.ping_interval_ms = 25000;
  engine_->configure_socketio(config);
  config.ping_interval_ms = 12345;
  engine_->configure_socketio(config);
  for (int i = 0; i < 4; ++i) {  // both threads
    const auto open = poll("GET", "/socket.io/?EIO=4&transport=polling");
    ASSERT_TRUE(open && open->code == 200);
    EXPECT_NE(open->data.find("\"pingInterval\":12345"), std::string::npos) << open->data;
  }
}

}  // namespace
