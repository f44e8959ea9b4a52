// engine.io's Server and Socket events as the engine reports them (io.engine and socket.conn in
// JS): each crosses only when asked for — kEioOpen and kEioConnectionError by the Socket.IO
// configuration, a session's packets, heartbeats, drains and upgrade probes by its watch mask.
#include "engine_fixture.hpp"

#include <nlohmann/json.hpp>

namespace {

class EngineIoEventsTest : public EngineTest {
 protected:
  void start_socketio(bool open_events, bool connection_errors = false) {
    sw::SocketIoConfig c;
    c.hooks = true;
    c.open_events = open_events;
    c.connection_errors = connection_errors;
    engine_->configure_socketio(c);
  }

  // A WebSocket session with its open packet read; `id` is its connection id (from kEioOpen).
  std::unique_ptr<Client> ws_session(sw::ClientId& id) {
    std::string open;
    auto c = eio_websocket(&open);
    if (!c) return nullptr;
    const auto sid = nlohmann::json::parse(open.substr(1)).at("sid").get<std::string>();
    const auto e = sink_->wait_for([&](const Event& ev) { return ev.type == Event::Type::kEioOpen && ev.data == sid; });
    if (!e) {
      ADD_FAILURE() << "no kEioOpen for " << sid;
      return nullptr;
    }
    EXPECT_EQ(e->text, "websocket");
    id = e->client;
    return c;
  }

  std::size_t count(Event::Type type, sw::ClientId id) {
    return sink_->count([&](const Event& e) { return e.type == type && e.client == id; });
  }

  // Sends an Engine.IO message and waits for the engine to have read it: a CONNECT to a
  // namespace that does not exist, sent after it, is answered in order with a CONNECT_ERROR.
  void send_and_settle(Client& c, const std::string& packet) {
    ASSERT_TRUE(c.send_text(packet));
    ASSERT_TRUE(c.send_text("40/settle,"));
    for (;;) {
      auto f = c.next_frame();
      ASSERT_TRUE(f) << "no answer";
      if (f->payload.rfind("44/settle,", 0) == 0) return;
    }
  }

};

TEST_F(EngineIoEventsTest, PacketEventsCrossOnlyForTheBitsAWatchSets) {
  start();
  start_socketio(/*open_events=*/true);
  sw::ClientId id = 0;
  auto c = ws_session(id);
  ASSERT_TRUE(c);

  send_and_settle(*c, "40");  // Socket.IO's CONNECT to '/'
  send_and_settle(*c, R"(42["first"])");
  EXPECT_EQ(count(Event::Type::kEioPacket, id) + count(Event::Type::kEioPacketCreate, id) + count(Event::Type::kEioDrain, id), 0u);

  engine_->sio_watch(id, sw::kWatchPacket | sw::kWatchPacketCreate);
  send_and_settle(*c, R"(42["second"])");
  const auto in = sink_->wait_for([&](const Event& e) {
    return e.type == Event::Type::kEioPacket && e.client == id && e.data == R"(2["second"])";
  });
  ASSERT_TRUE(in);
  EXPECT_EQ(in->text, "message");
  EXPECT_FALSE(in->binary);
  // The settling CONNECT and the engine's CONNECT_ERROR are packets too.
  EXPECT_TRUE(sink_->wait_for([&](const Event& e) {
    return e.type == Event::Type::kEioPacket && e.client == id && e.text == "message" && e.data == "0/settle,";
  }));
  EXPECT_TRUE(sink_->wait_for([&](const Event& e) {
    return e.type == Event::Type::kEioPacketCreate && e.client == id && e.text == "message" && e.data.rfind("4/settle,", 0) == 0;
  }));
  EXPECT_EQ(count(Event::Type::kEioDrain, id), 0u);  // not asked for

  // A binary attachment arrives as binary data.
  ASSERT_TRUE(c->send_text(R"(451-["bin",{"_placeholder":true,"num":0}])"));
  ASSERT_TRUE(c->send(ws::kBinary, std::string("\x01\x02", 2)));
  const auto bin = sink_->wait_for([&](const Event& e) { return e.type == Event::Type::kEioPacket && e.client == id && e.binary; });
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->text, "message");
  EXPECT_EQ(bin->data, std::string("\x01\x02", 2));

  engine_->sio_watch(id, 0);
  send_and_settle(*c, R"(42["third"])");
  EXPECT_EQ(sink_->count([&](const Event& e) { return e.type == Event::Type::kEioPacket && e.data == R"(2["third"])"; }), 0u);
  EXPECT_EQ(sink_->count([&](const Event& e) { return e.type == Event::Type::kEioClose; }), 0u);  // still open
}

TEST_F(EngineIoEventsTest, OpenEventsAndConnectionErrorsOnlyWhenConfigured) {
  start();
  start_socketio(/*open_events=*/false, /*connection_errors=*/false);
  auto quiet = connect("/socket.io/?EIO=4&transport=websocket");
  ASSERT_TRUE(quiet);
  ASSERT_TRUE(quiet->next_frame());
  auto refused = adopt_raw(upgrade_request("/socket.io/?EIO=4&transport=websocket&sid=nope", new_key()));
  ASSERT_TRUE(refused);
  const auto head = refused->read_http_head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->rfind("HTTP/1.1 400 ", 0), 0u) << *head;
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(sink_->count([](const Event& e) {
              return e.type == Event::Type::kEioOpen || e.type == Event::Type::kEioConnectionError;
            }),
            0u);

  start_socketio(/*open_events=*/true, /*connection_errors=*/true);
  std::this_thread::sleep_for(20ms);  // the configuration reaches the I/O thread through its queue
  auto again = adopt_raw(upgrade_request("/socket.io/?EIO=4&transport=websocket&sid=nope", new_key()));
  ASSERT_TRUE(again);
  ASSERT_TRUE(again->read_http_head());
  const auto err = sink_->wait_for([](const Event& e) { return e.type == Event::Type::kEioConnectionError; });
  ASSERT_TRUE(err);
  EXPECT_EQ(err->code, 1);  // Session ID unknown
  EXPECT_EQ(err->text, "/socket.io/?EIO=4&transport=websocket&sid=nope");
  EXPECT_EQ(err->data.rfind("127.0.0.1\r\n", 0), 0u);
  EXPECT_NE(err->data.find("\r\nUpgrade: websocket\r\n"), std::string::npos);

  // A refused polling request says which check failed; a session's own answers do not.
  const auto unknown = poll("GET", "/socket.io/?EIO=4&transport=polling&sid=nope");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->code, 400);
  EXPECT_EQ(unknown->number, 1);
  const auto method = poll("POST", "/socket.io/?EIO=4&transport=polling", "40");
  ASSERT_TRUE(method);
  EXPECT_EQ(method->number, 2);
  const auto open = poll("GET", "/socket.io/?EIO=4&transport=polling");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->number, -1);
  const auto sid = nlohmann::json::parse(open->data.substr(1)).at("sid").get<std::string>();
  EXPECT_TRUE(sink_->wait_for([&](const Event& e) { return e.type == Event::Type::kEioOpen && e.data == sid && e.text == "polling"; }));
}

TEST_F(EngineIoEventsTest, ExtraResponseHeadersGoIntoThe101AndBadLinesAreDropped) {
  start();
  start_socketio(false);
  const std::string key = new_key();
  auto r = upgrade_request("/socket.io/?EIO=4&transport=websocket", key);
  r.response_headers = "Set-Cookie: a=1\r\nX-Evil: 1\rInjected: 2\r\nX-Two: two\r\n: nameless\r\n";
  auto c = adopt_raw(std::move(r));
  ASSERT_TRUE(c);
  const auto head = c->read_http_head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->rfind("HTTP/1.1 101 ", 0), 0u) << *head;
  EXPECT_NE(head->find("\r\nSet-Cookie: a=1\r\n"), std::string::npos) << *head;
  EXPECT_NE(head->find("\r\nX-Two: two\r\n"), std::string::npos) << *head;
  EXPECT_EQ(head->find("Injected"), std::string::npos) << *head;
  EXPECT_EQ(head->find("nameless"), std::string::npos) << *head;
  EXPECT_TRUE(c->next_frame());  // the open packet follows the head
}

TEST_F(EngineIoEventsTest, HeartbeatDrainUpgradingAndCloseSession) {
  start();
  sw::SocketIoConfig config;
  config.hooks = true;
  config.open_events = true;
  config.ping_interval_ms = 100;
  config.ping_timeout_ms = 2000;
  engine_->configure_socketio(config);

  // Polling, then the probe of an upgrade: kEioUpgrading once the probe is answered.
  const auto open = poll("GET", "/socket.io/?EIO=4&transport=polling");
  ASSERT_TRUE(open);
  const auto sid = nlohmann::json::parse(open->data.substr(1)).at("sid").get<std::string>();
  const auto opened = sink_->wait_for([&](const Event& e) { return e.type == Event::Type::kEioOpen && e.data == sid; });
  ASSERT_TRUE(opened);
  const sw::ClientId id = opened->client;
  engine_->sio_watch(id, sw::kWatchUpgrading | sw::kWatchDrain);
  auto probe = connect("/socket.io/?EIO=4&transport=websocket&sid=" + sid);
  ASSERT_TRUE(probe);
  ASSERT_TRUE(probe->send_text("2probe"));
  const auto pong = probe->next_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->payload, "3probe");
  const auto upgrading = sink_->wait_for(Event::Type::kEioUpgrading, id);
  ASSERT_TRUE(upgrading);
  EXPECT_EQ(upgrading->data, "websocket");
  ASSERT_TRUE(probe->send_text("5"));
  ASSERT_TRUE(sink_->wait_for(Event::Type::kEioUpgrade, id));

  // Over the WebSocket now: pings every 100 ms, each pong a heartbeat; a ping sent is a drain.
  engine_->sio_watch(id, sw::kWatchHeartbeat | sw::kWatchDrain);
  for (int beats = 0; beats < 2;) {
    auto f = probe->next_frame();
    ASSERT_TRUE(f);
    if (f->payload == "2") {
      ASSERT_TRUE(probe->send_text("3"));
      ++beats;
    }
  }
  EXPECT_TRUE(wait_until([&] { return count(Event::Type::kEioHeartbeat, id) >= 2; }));
  EXPECT_GE(count(Event::Type::kEioDrain, id), 1u);

  // engine.io's socket.close(): the session ends as "forced close".
  EXPECT_EQ(engine_->sio_session_count(), 1u);
  engine_->sio_close_session(id);
  const auto closed = sink_->wait_for(Event::Type::kEioClose, id);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->data, "forced close");
  EXPECT_TRUE(wait_until([&] { return engine_->sio_session_count() == 0; }));
}

}  // namespace
