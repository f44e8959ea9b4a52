// Integration tests of sidewire::Engine over real loopback sockets (fixture: engine_fixture.hpp).
#include "engine_fixture.hpp"

// ---------------------------------------------------------------------------------------------
// Channels and rooms
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, AddChannelRejectsDuplicatePathsAndReportsStats) {
  start();
  const auto a = engine_->add_channel(relay_channel("/ws/a"));
  const auto b = engine_->add_channel(relay_channel("/ws/b"));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, 0u);
  EXPECT_EQ(*b, 1u);
  EXPECT_FALSE(engine_->add_channel(relay_channel("/ws/a")).has_value());
  const auto s = engine_->stats();
  ASSERT_EQ(s.channels.size(), 2u);
  EXPECT_EQ(s.channels[0].path, "/ws/a");
  EXPECT_EQ(s.channels[1].path, "/ws/b");
  EXPECT_EQ(s.connections, 0u);
  // Unknown channels and clients are ignored, not crashes.
  EXPECT_EQ(engine_->connection_count(99), 0u);
  EXPECT_EQ(engine_->room_size(99, "x"), 0u);
  engine_->broadcast(99, "", "nobody", false);
  engine_->send(0x12345600, "nobody", false);
  engine_->close(0x12345600, 1000, "");
  engine_->join(0x12345600, "r");
}

TEST_F(EngineTest, RelayInRoomReachesOtherMembersOnly) {
  start(2);  // two I/O threads: members of one room live on both
  const auto ch = add_channel(relay_channel("/ws/fabric", "documentId"), /*open=*/true);
  auto c1 = connect("/ws/fabric?documentId=a");
  auto c2 = connect("/ws/fabric?documentId=a");
  auto c3 = connect("/ws/fabric?documentId=b");
  ASSERT_TRUE(c1 && c2 && c3);
  EXPECT_NE(sw::worker_of(c1->id), sw::worker_of(c2->id));
  EXPECT_EQ(engine_->room_size(ch, "a"), 2u);
  EXPECT_EQ(engine_->room_size(ch, "b"), 1u);
  EXPECT_EQ(engine_->connection_count(ch), 3u);
  for (const auto* c : {c1.get(), c2.get(), c3.get()}) {
    const auto open = sink_->wait_for(Event::Type::kOpen, c->id);
    ASSERT_TRUE(open) << "no kOpen for " << c->id;
    EXPECT_EQ(open->channel, ch);
  }

  std::string bin;
  for (int i = 0; i < 300; ++i) bin.push_back(static_cast<char>(i));  // every byte value, 16-bit length
  const std::string big = binary_payload(70000, 7);                    // 64-bit length
  ASSERT_TRUE(c1->send_text("hello room"));
  ASSERT_TRUE(c1->send_binary(bin));
  ASSERT_TRUE(c1->send_binary(big));
  ASSERT_TRUE(c1->send_text(""));

  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kText, "hello room"));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kBinary, bin));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kBinary, big));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kText, ""));

  // Neither the sender nor the other room got anything: the next frame each sees is the marker.
  engine_->broadcast(ch, "", "marker", false);
  EXPECT_TRUE(IsMessage(c1->next_frame(), ws::kText, "marker"));
  EXPECT_TRUE(IsMessage(c3->next_frame(), ws::kText, "marker"));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kText, "marker"));
  EXPECT_GE(engine_->stats().messages_received, 4u);
}

TEST_F(EngineTest, ClientWithoutRoomQueryJoinsNoRoom) {
  start();
  const auto ch = add_channel(relay_channel("/ws/r", "doc"));
  auto a = connect("/ws/r?doc=x");
  auto b = connect("/ws/r");           // no room: its messages go nowhere
  auto c = connect("/ws/r?doc=&x=1");  // empty room name: no room either
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(engine_->room_size(ch, "x"), 1u);
  EXPECT_EQ(engine_->room_size(ch, ""), 0u);
  ASSERT_TRUE(b->send_text("from b"));
  ASSERT_TRUE(c->send_text("from c"));
  engine_->broadcast(ch, "", "marker", false);
  EXPECT_TRUE(IsMessage(a->next_frame(), ws::kText, "marker"));
}

TEST_F(EngineTest, RoomNameIsPercentDecoded) {
  start();
  const auto ch = add_channel(relay_channel("/ws/r", "doc"));
  auto a = connect("/ws/r?x=1&doc=caf%C3%A9+au+lait");
  ASSERT_TRUE(a);
  EXPECT_EQ(engine_->room_size(ch, "caf\xC3\xA9 au lait"), 1u);
  engine_->broadcast(ch, "caf\xC3\xA9 au lait", "in room", false);
  EXPECT_TRUE(IsMessage(a->next_frame(), ws::kText, "in room"));
}

TEST_F(EngineTest, BytesReadPastTheRequestHeadAreRelayed) {
  start();
  add_channel(relay_channel("/ws/r"));
  auto a = connect("/ws/r?doc=x");
  ASSERT_TRUE(a);
  const std::string head = client_frame(0x81, "early bird", 0xA1B2C3D4);
  auto b = connect("/ws/r?doc=x", head);
  ASSERT_TRUE(b);
  EXPECT_TRUE(IsMessage(a->next_frame(), ws::kText, "early bird"));
}

TEST_F(EngineTest, HeadWithCompleteAndPartialFrameReachesMessageHook) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/h";
  const auto ch = add_channel(cfg, false, /*message=*/true, false);
  const std::string f1 = client_frame(0x81, "first", 0x01020304);
  const std::string f2 = client_frame(0x82, std::string("second\0part", 11), 0x0F0E0D0C);
  auto c = connect("/ws/h", f1 + f2.substr(0, 5));  // the second frame is cut inside its mask
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->write_all(f2.substr(5)));
  const auto m1 = sink_->wait_for([&](const Event& e) { return e.type == Event::Type::kMessage && e.data == "first"; });
  ASSERT_TRUE(m1);
  EXPECT_FALSE(m1->binary);
  EXPECT_EQ(m1->client, c->id);
  EXPECT_EQ(m1->channel, ch);
  const auto m2 = sink_->wait_for([&](const Event& e) { return e.type == Event::Type::kMessage && e.binary; });
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->data, std::string("second\0part", 11));
  // In order, once each.
  std::vector<std::string> seen;
  for (const auto& e : sink_->snapshot()) {
    if (e.type == Event::Type::kMessage) seen.push_back(e.data);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"first", std::string("second\0part", 11)}));
}

TEST_F(EngineTest, JoinAndLeaveMessages) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/j";
  cfg.join_messages = true;
  const auto ch = add_channel(cfg, false, /*message=*/true, false);
  auto c = connect("/ws/j");
  auto other = connect("/ws/j");
  ASSERT_TRUE(c && other);

  ASSERT_TRUE(c->send_text(R"({"join":"r1"})"));
  ASSERT_TRUE(wait_until([&] { return engine_->room_size(ch, "r1") == 1; })) << engine_->room_size(ch, "r1");
  engine_->broadcast(ch, "r1", "to r1", false);
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kText, "to r1"));
  engine_->broadcast(ch, "", "everyone", false);
  EXPECT_TRUE(IsMessage(other->next_frame(), ws::kText, "everyone"));  // not "to r1"
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kText, "everyone"));

  // Joining twice does not count twice.
  ASSERT_TRUE(c->send_text(R"({"join":"r1"})"));
  ASSERT_TRUE(c->send_text(R"({"leave":"r1"})"));
  ASSERT_TRUE(wait_until([&] { return engine_->room_size(ch, "r1") == 0; })) << engine_->room_size(ch, "r1");
  engine_->broadcast(ch, "r1", "to nobody", false);
  engine_->broadcast(ch, "", "marker", false);
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kText, "marker"));

  // Join commands never reach the message hook; other messages (even JSON-ish ones) do.
  ASSERT_TRUE(c->send_text(R"({"join":5})"));
  ASSERT_TRUE(c->send_text("plain"));
  ASSERT_TRUE(sink_->wait_for([&](const Event& e) { return e.type == Event::Type::kMessage && e.data == "plain"; }));
  std::vector<std::string> hooked;
  for (const auto& e : sink_->snapshot()) {
    if (e.type == Event::Type::kMessage) hooked.push_back(e.data);
  }
  EXPECT_EQ(hooked, (std::vector<std::string>{R"({"join":5})", "plain"}));
  EXPECT_EQ(engine_->room_size(ch, "5"), 0u);
}

TEST_F(EngineTest, JoinAndLeaveFromTheApi) {
  start(2);
  sw::ChannelConfig cfg;
  cfg.path = "/ws/api";
  const auto ch = add_channel(cfg);
  auto a = connect("/ws/api");
  auto b = connect("/ws/api");
  ASSERT_TRUE(a && b);
  engine_->join(a->id, "r2");
  engine_->join(b->id, "r2");
  ASSERT_TRUE(wait_until([&] { return engine_->room_size(ch, "r2") == 2; }));
  engine_->leave(b->id, "r2");
  ASSERT_TRUE(wait_until([&] { return engine_->room_size(ch, "r2") == 1; }));
  engine_->broadcast(ch, "r2", "r2 only", true);
  EXPECT_TRUE(IsMessage(a->next_frame(), ws::kBinary, "r2 only"));
  engine_->broadcast(ch, "", "marker", false);
  EXPECT_TRUE(IsMessage(b->next_frame(), ws::kText, "marker"));
  const auto stats = engine_->stats();
  ASSERT_EQ(stats.channels.size(), 1u);
  EXPECT_EQ(stats.channels[0].connections, 2u);
  EXPECT_EQ(stats.channels[0].rooms, (std::vector<std::pair<std::string, std::uint64_t>>{{"r2", 1}}));
}

// ---------------------------------------------------------------------------------------------
// Commands from JS: broadcast, send, close
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, BroadcastExceptSendAndClose) {
  start(2);
  sw::ChannelConfig cfg;
  cfg.path = "/ws/b";
  const auto ch = add_channel(cfg, false, false, /*close=*/true);
  auto c1 = connect("/ws/b");
  auto c2 = connect("/ws/b");
  auto c3 = connect("/ws/b");
  ASSERT_TRUE(c1 && c2 && c3);
  const auto delivered_before = engine_->stats().messages_delivered;

  engine_->broadcast(ch, "", "all but 2", false, c2->id);
  EXPECT_TRUE(IsMessage(c1->next_frame(), ws::kText, "all but 2"));
  EXPECT_TRUE(IsMessage(c3->next_frame(), ws::kText, "all but 2"));
  // Posted after the broadcast to the same thread: had c2 got the broadcast, it would come first.
  engine_->send(c2->id, "just you", true);
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kBinary, "just you"));
  EXPECT_TRUE(wait_until([&] { return engine_->stats().messages_delivered - delivered_before == 3; }))
      << engine_->stats().messages_delivered - delivered_before;

  engine_->close(c3->id, 4000, "bye");
  const auto f = c3->next_frame();
  ASSERT_TRUE(IsClose(f, 4000));
  EXPECT_EQ(f->close_reason(), "bye");
  const auto ev = sink_->wait_for(Event::Type::kClose, c3->id);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->code, 4000);
  EXPECT_EQ(ev->data, "bye");
  EXPECT_EQ(ev->channel, ch);
  ASSERT_TRUE(c3->send_close(4000));  // completes the closing handshake
  EXPECT_TRUE(c3->wait_eof());
  EXPECT_TRUE(wait_until([&] { return engine_->connection_count(ch) == 2; }));
  EXPECT_EQ(sink_->count([](const Event& e) { return e.type == Event::Type::kClose; }), 1u);

  // A closed client is no longer a broadcast target; the others still are.
  engine_->broadcast(ch, "", "after close", false);
  EXPECT_TRUE(IsMessage(c1->next_frame(), ws::kText, "after close"));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kText, "after close"));
}

TEST_F(EngineTest, CloseHandshakeTimesOutWhenThePeerNeverAnswers) {
  start(1, /*close_timeout_ms=*/300);
  sw::ChannelConfig cfg;
  cfg.path = "/ws/t";
  add_channel(cfg);
  auto c = connect("/ws/t");
  ASSERT_TRUE(c);
  const auto t0 = Clock::now();
  engine_->close(c->id, 4001, "");
  EXPECT_TRUE(IsClose(c->next_frame(), 4001));
  ASSERT_TRUE(c->wait_eof(3000ms));
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, 250ms);  // it did wait for the peer's close frame
  EXPECT_LE(elapsed, 2000ms);
  EXPECT_EQ(engine_->stats().connections, 0u);
}

// ---------------------------------------------------------------------------------------------
// Control frames and the closing handshake from the client
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, PingIsAnsweredWithPongCarryingThePayload) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/p";
  add_channel(cfg);
  auto c = connect("/ws/p");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send(ws::kPing, "are you there"));
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kPong, "are you there"));
  ASSERT_TRUE(c->send(ws::kPing, ""));
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kPong, ""));
  const std::string max_ping = binary_payload(125, 3);
  ASSERT_TRUE(c->send(ws::kPing, max_ping));
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kPong, max_ping));
  // An unsolicited pong is fine and answered by nothing.
  ASSERT_TRUE(c->send(ws::kPong, "unsolicited"));
  ASSERT_TRUE(c->send(ws::kPing, "after"));
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kPong, "after"));
}

TEST_F(EngineTest, ClientCloseIsEchoedAndTheConnectionEnds) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/c";
  cfg.room_query = "doc";
  const auto ch = add_channel(cfg, false, false, /*close=*/true);
  auto c = connect("/ws/c?doc=d");
  auto empty = connect("/ws/c?doc=d");
  ASSERT_TRUE(c && empty);
  EXPECT_EQ(engine_->room_size(ch, "d"), 2u);

  ASSERT_TRUE(c->send_close(1000, "done"));
  EXPECT_TRUE(IsClose(c->next_frame(), 1000));
  EXPECT_TRUE(c->wait_eof());
  const auto ev = sink_->wait_for(Event::Type::kClose, c->id);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->code, 1000);
  EXPECT_EQ(ev->data, "done");

  // A close frame without a body is answered with an empty one and reported as 1005.
  ASSERT_TRUE(empty->send(ws::kClose, ""));
  const auto f = empty->next_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, ws::kClose);
  EXPECT_EQ(f->payload, "");
  EXPECT_TRUE(empty->wait_eof());
  const auto ev2 = sink_->wait_for(Event::Type::kClose, empty->id);
  ASSERT_TRUE(ev2);
  EXPECT_EQ(ev2->code, ws::kNoStatus);

  EXPECT_TRUE(wait_until([&] { return engine_->connection_count(ch) == 0 && engine_->stats().connections == 0; }));
  EXPECT_EQ(engine_->room_size(ch, "d"), 0u);
}

TEST_F(EngineTest, AbruptDisconnectIsReportedAs1006AndLeavesRooms) {
  start();
  const auto ch = add_channel(relay_channel("/ws/r"));
  auto a = connect("/ws/r?doc=x");
  auto b = connect("/ws/r?doc=x");
  ASSERT_TRUE(a && b);
  const sw::ClientId gone = a->id;
  a->close_now();
  const auto ev = sink_->wait_for(Event::Type::kClose, gone);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->code, ws::kAbnormal);
  EXPECT_TRUE(wait_until([&] { return engine_->room_size(ch, "x") == 1 && engine_->connection_count(ch) == 1; }));
  // The survivor's relay has nobody to reach and must not trip on the departed member.
  ASSERT_TRUE(b->send_text("anyone?"));
  engine_->broadcast(ch, "x", "still here", false);
  EXPECT_TRUE(IsMessage(b->next_frame(), ws::kText, "still here"));
}

TEST_F(EngineTest, FragmentedMessageWithInterleavedPingIsRelayedWhole) {
  start();
  add_channel(relay_channel("/ws/f"));
  auto c1 = connect("/ws/f?doc=x");
  auto c2 = connect("/ws/f?doc=x");
  ASSERT_TRUE(c1 && c2);
  // "Hello, wérld" in 3 fragments; the 'é' (C3 A9) is split across fragments 2 and 3.
  ASSERT_TRUE(c1->send(ws::kText, "Hel", false));
  ASSERT_TRUE(c1->send(ws::kPing, "p"));
  ASSERT_TRUE(c1->send(ws::kContinuation, "lo, w\xC3", false));
  ASSERT_TRUE(c1->send(ws::kContinuation, "\xA9rld", true));
  EXPECT_TRUE(IsMessage(c1->next_frame(), ws::kPong, "p"));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kText, "Hello, w\xC3\xA9rld"));
  // A binary message in fragments, one of them empty.
  ASSERT_TRUE(c1->send(ws::kBinary, std::string("\x00\x01", 2), false));
  ASSERT_TRUE(c1->send(ws::kContinuation, "", false));
  ASSERT_TRUE(c1->send(ws::kContinuation, "\x02\x03", true));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kBinary, std::string("\x00\x01\x02\x03", 4)));
}

TEST_F(EngineTest, FramesSplitAcrossWritesAreReassembled) {
  start();
  add_channel(relay_channel("/ws/s"));
  auto c1 = connect("/ws/s?doc=x");
  auto c2 = connect("/ws/s?doc=x");
  ASSERT_TRUE(c1 && c2);
  const std::string payload = binary_payload(3000, 11);
  const std::string f = c1->frame(ws::kBinary, payload) + c1->frame(ws::kText, "second");
  // Cut inside the length, inside the mask, inside the payload, and between the two frames.
  const std::size_t cuts[] = {0, 1, 3, 6, 100, 2900, f.size() - 10, f.size()};
  for (std::size_t k = 0; k + 1 < std::size(cuts); ++k) {
    ASSERT_TRUE(c1->write_all(std::string_view(f).substr(cuts[k], cuts[k + 1] - cuts[k])));
    std::this_thread::sleep_for(5ms);  // let the server read each piece on its own
  }
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kBinary, payload));
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kText, "second"));
}

// ---------------------------------------------------------------------------------------------
// Limits and protocol errors
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, OversizedMessageIsClosedWith1009AndOthersKeepRelaying) {
  start();
  auto cfg = relay_channel("/ws/l");
  cfg.max_payload = 1024;
  const auto ch = add_channel(cfg, false, false, /*close=*/true);
  auto big = connect("/ws/l?doc=x");
  auto c2 = connect("/ws/l?doc=x");
  auto c3 = connect("/ws/l?doc=x");
  ASSERT_TRUE(big && c2 && c3);

  ASSERT_TRUE(big->send_binary(std::string(1024, 'k')));  // exactly the limit is fine
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kBinary, std::string(1024, 'k')));
  EXPECT_TRUE(IsMessage(c3->next_frame(), ws::kBinary, std::string(1024, 'k')));

  ASSERT_TRUE(big->send_binary(std::string(2000, 'x')));
  EXPECT_TRUE(IsClose(big->next_frame(), ws::kMessageTooBig));
  EXPECT_TRUE(big->wait_eof());
  const auto ev = sink_->wait_for(Event::Type::kClose, big->id);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->code, ws::kMessageTooBig);
  EXPECT_TRUE(wait_until([&] { return engine_->room_size(ch, "x") == 2; }));
  EXPECT_GE(engine_->stats().protocol_errors, 1u);

  ASSERT_TRUE(c2->send_text("still relaying"));
  EXPECT_TRUE(IsMessage(c3->next_frame(), ws::kText, "still relaying"));
  engine_->broadcast(ch, "", "marker", false);
  EXPECT_TRUE(IsMessage(c2->next_frame(), ws::kText, "marker"));  // the 2000 bytes never reached c2
}

TEST_F(EngineTest, InvalidUtf8TextIsClosedWith1007) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/u";
  add_channel(cfg);
  auto c = connect("/ws/u");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send_text("ok \xED\xA0\x80 surrogate"));
  EXPECT_TRUE(IsClose(c->next_frame(), ws::kInvalidPayload));
  EXPECT_TRUE(c->wait_eof());
}

TEST_F(EngineTest, UnmaskedFrameIsClosedWith1002) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/m";
  add_channel(cfg);
  auto c = connect("/ws/m");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->write_all(client_frame(0x81, "not masked", 0, /*masked=*/false)));
  EXPECT_TRUE(IsClose(c->next_frame(), ws::kProtocolError));
  EXPECT_TRUE(c->wait_eof());
}

TEST_F(EngineTest, FragmentedMessageOverMaxIsClosedWith1009) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/fm";
  cfg.max_payload = 1024;
  add_channel(cfg);
  auto c = connect("/ws/fm");
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send(ws::kBinary, std::string(600, 'a'), false));
  ASSERT_TRUE(c->send(ws::kContinuation, std::string(300, 'b'), false));
  ASSERT_TRUE(c->send(ws::kContinuation, std::string(300, 'c'), true));  // 1200 in all
  EXPECT_TRUE(IsClose(c->next_frame(), ws::kMessageTooBig));
  EXPECT_TRUE(c->wait_eof());
}

TEST_F(EngineTest, ProtocolViolationsCloseWithTheRightCode) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/v";
  cfg.max_payload = 1024;
  const auto ch = add_channel(cfg, false, false, /*close=*/true);
  const std::uint32_t m = 0x11223344;
  struct Case {
    const char* name;
    std::string bytes;
    std::uint16_t code;
  };
  std::string non_minimal = client_frame(0x82, std::string(5, 'x'), m);
  non_minimal = std::string("\x82\xFE\x00\x05", 4) + non_minimal.substr(2);  // 16-bit length for 5 bytes
  const std::vector<Case> cases = {
      {"RSV1 set", client_frame(0xC1, "x", m), ws::kProtocolError},
      {"RSV3 set", client_frame(0x92, "x", m), ws::kProtocolError},
      {"unknown data opcode", client_frame(0x83, "x", m), ws::kProtocolError},
      {"unknown control opcode", client_frame(0x8B, "", m), ws::kProtocolError},
      {"unmasked", client_frame(0x82, "x", m, false), ws::kProtocolError},
      {"non-minimal length", non_minimal, ws::kProtocolError},
      {"continuation without a message", client_frame(0x80, "x", m), ws::kProtocolError},
      {"new message inside a fragmented one", client_frame(0x01, "a", m) + client_frame(0x81, "b", m), ws::kProtocolError},
      {"ping of 126 bytes", client_frame(0x89, std::string(126, 'p'), m), ws::kProtocolError},
      {"fragmented ping", client_frame(0x09, "p", m), ws::kProtocolError},
      {"close with a 1-byte body", client_frame(0x88, "\x03", m), ws::kProtocolError},
      {"close with code 1005", client_frame(0x88, close_payload(1005), m), ws::kProtocolError},
      {"close with code 999", client_frame(0x88, close_payload(999), m), ws::kProtocolError},
      {"close reason not UTF-8", client_frame(0x88, close_payload(1000, "\xFF"), m), ws::kInvalidPayload},
      {"text not UTF-8", client_frame(0x81, "\xC3\x28", m), ws::kInvalidPayload},
      {"text truncated UTF-8", client_frame(0x81, "abc\xE2\x82", m), ws::kInvalidPayload},
      {"fragmented text not UTF-8", client_frame(0x01, "ok\xE2", m) + client_frame(0x80, "\x28\xA1", m), ws::kInvalidPayload},
      {"message over max_payload", client_frame(0x82, std::string(2000, 'x'), m), ws::kMessageTooBig},
      {"fragments over max_payload", client_frame(0x02, std::string(600, 'x'), m) + client_frame(0x80, std::string(600, 'y'), m), ws::kMessageTooBig},
  };
  const auto errors_before = engine_->stats().protocol_errors;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto c = connect("/ws/v");
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->write_all(tc.bytes));
    EXPECT_TRUE(IsClose(c->next_frame(), tc.code));
    EXPECT_TRUE(c->wait_eof());
    const auto ev = sink_->wait_for(Event::Type::kClose, c->id);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->code, tc.code);
  }
  EXPECT_EQ(engine_->stats().protocol_errors - errors_before, cases.size());
  EXPECT_TRUE(wait_until([&] { return engine_->connection_count(ch) == 0; }));
}

TEST_F(EngineTest, SmallMaxPayloadStillAcceptsLegalPingArrivingInPieces) {
  // max_payload limits messages; a ping may carry up to 125 bytes whatever the limit. The ping
  // arrives in two reads, so the engine holds a partial control frame longer than max_payload.
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/small";
  cfg.max_payload = 16;
  add_channel(cfg);
  auto c = connect("/ws/small");
  ASSERT_TRUE(c);
  const std::string payload(100, 'p');
  const std::string f = c->frame(ws::kPing, payload);
  ASSERT_TRUE(c->write_all(f.substr(0, 50)));
  std::this_thread::sleep_for(30ms);  // the server reads the first half alone
  ASSERT_TRUE(c->write_all(f.substr(50)));
  EXPECT_TRUE(IsMessage(c->next_frame(), ws::kPong, payload));
}

// ---------------------------------------------------------------------------------------------
// Refused upgrades
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, RefusedUpgradesGetAnHttpErrorAndAnEvent) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/ok";
  const auto ch = add_channel(cfg);

  struct Case {
    const char* name;
    sw::UpgradeRequest request;
    int status;
    std::uint32_t channel;
  };
  auto req = [&](const std::string& target) { return upgrade_request(target, new_key()); };
  std::vector<Case> cases;
  cases.push_back({"unknown path", req("/nope?x=1"), 404, UINT32_MAX});
  {
    auto r = req("/ws/ok");
    std::erase_if(r.headers, [](const auto& h) { return h.first == "Sec-WebSocket-Key"; });
    cases.push_back({"missing key", r, 400, ch});
  }
  {
    auto r = req("/ws/ok");
    for (auto& [k, v] : r.headers) {
      if (k == "Sec-WebSocket-Version") v = "12";
    }
    cases.push_back({"version 12", r, 426, ch});
  }
  {
    auto r = req("/ws/ok");
    r.method = "POST";
    cases.push_back({"POST", r, 405, ch});
  }
  {
    auto r = req("/ws/ok");
    for (auto& [k, v] : r.headers) {
      if (k == "Upgrade") v = "h2c";
    }
    cases.push_back({"not websocket", r, 400, ch});
  }

  for (auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto c = adopt_raw(tc.request);
    ASSERT_TRUE(c);
    const auto response = c->read_to_eof();
    ASSERT_TRUE(response) << "the connection was not closed";
    EXPECT_EQ(response->rfind("HTTP/1.1 " + std::to_string(tc.status) + " ", 0), 0u) << *response;
    if (tc.status == 426) EXPECT_NE(response->find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos) << *response;
    const auto ev = sink_->wait_for(Event::Type::kRefused, c->id);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->code, tc.status);
    EXPECT_EQ(ev->channel, tc.channel);
  }
  const auto s = engine_->stats();
  EXPECT_EQ(s.upgrades_refused, cases.size());
  EXPECT_EQ(s.connections, 0u);
  EXPECT_EQ(s.connections_total, 0u);
  EXPECT_EQ(engine_->connection_count(ch), 0u);
}

// ---------------------------------------------------------------------------------------------
// Heartbeat
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, HeartbeatDropsASilentPeerAndKeepsAResponsiveOne) {
  start();
  sw::ChannelConfig cfg;
  cfg.path = "/ws/hb";
  cfg.ping_interval_ms = 300;
  cfg.ping_timeout_ms = 300;
  const auto ch = add_channel(cfg, false, false, /*close=*/true);
  auto silent = connect("/ws/hb");
  auto alive = connect("/ws/hb");
  ASSERT_TRUE(silent && alive);
  const auto t0 = Clock::now();

  bool silent_pinged = false;
  std::optional<Clock::duration> silent_closed_after;
  int alive_pings = 0;
  while (Clock::now() - t0 < 2500ms) {
    if (!silent_closed_after) {
      if (auto f = silent->next_frame(10ms)) {
        EXPECT_EQ(f->opcode, ws::kPing);
        silent_pinged = silent_pinged || f->opcode == ws::kPing;  // read, never answered
      } else if (silent->eof()) {
        silent_closed_after = Clock::now() - t0;
      }
    }
    if (auto g = alive->next_frame(10ms)) {
      ASSERT_EQ(g->opcode, ws::kPing);
      ASSERT_TRUE(alive->send(ws::kPong, g->payload));
      ++alive_pings;
    }
    ASSERT_FALSE(alive->eof()) << "the responsive peer was dropped";
    if (silent_closed_after && Clock::now() - t0 >= 1500ms) break;
  }
  EXPECT_TRUE(silent_pinged);
  ASSERT_TRUE(silent_closed_after) << "the silent peer was not dropped within 2.5 s";
  EXPECT_LE(*silent_closed_after, 2000ms);
  EXPECT_GE(alive_pings, 2);
  EXPECT_EQ(engine_->stats().heartbeat_timeouts, 1u);
  const auto ev = sink_->wait_for(Event::Type::kClose, silent->id);
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->code, ws::kAbnormal);

  // The responsive peer is still fully alive.
  ASSERT_TRUE(alive->send(ws::kPing, "still here?"));
  bool answered = false;
  for (int i = 0; i < 5 && !answered; ++i) {
    auto f = alive->next_frame();
    ASSERT_TRUE(f);
    if (f->opcode == ws::kPing) {
      ASSERT_TRUE(alive->send(ws::kPong, f->payload));
      continue;
    }
    EXPECT_TRUE(IsMessage(f, ws::kPong, "still here?"));
    answered = true;
  }
  EXPECT_TRUE(answered);
  EXPECT_EQ(engine_->connection_count(ch), 1u);
}

// ---------------------------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, ShutdownClosesEveryoneWith1001AndReports) {
  start(2);
  sw::ChannelConfig cfg;
  cfg.path = "/ws/sd";
  const auto ch = add_channel(cfg, false, false, /*close=*/true);
  auto polite = connect("/ws/sd");
  auto rude = connect("/ws/sd");
  ASSERT_TRUE(polite && rude);

  const auto t0 = Clock::now();
  engine_->shutdown(500ms);
  EXPECT_TRUE(IsClose(polite->next_frame(), ws::kGoingAway));
  EXPECT_TRUE(IsClose(rude->next_frame(), ws::kGoingAway));
  ASSERT_TRUE(polite->send_close(ws::kGoingAway));  // answers; `rude` never does
  EXPECT_TRUE(polite->wait_eof());
  EXPECT_TRUE(rude->wait_eof());
  ASSERT_TRUE(sink_->wait_for([](const Event& e) { return e.type == Event::Type::kShutdown; }));
  EXPECT_LE(Clock::now() - t0, 3000ms);
  EXPECT_EQ(engine_->stats().connections, 0u);
  EXPECT_EQ(engine_->connection_count(ch), 0u);
  for (const auto* c : {polite.get(), rude.get()}) {
    const auto ev = sink_->wait_for(Event::Type::kClose, c->id);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->code, ws::kGoingAway);
  }
  EXPECT_EQ(sink_->count([](const Event& e) { return e.type == Event::Type::kShutdown; }), 1u);

  // New connections are refused with 503 once shutting down.
  auto late = adopt_raw(upgrade_request("/ws/sd", new_key()));
  ASSERT_TRUE(late);
  const auto response = late->read_to_eof();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->rfind("HTTP/1.1 503 ", 0), 0u) << *response;
  const auto refused = sink_->wait_for(Event::Type::kRefused, late->id);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, 503);
}

TEST_F(EngineTest, ShutdownWithNoConnectionsStillReports) {
  start();
  engine_->shutdown(200ms);
  EXPECT_TRUE(sink_->wait_for([](const Event& e) { return e.type == Event::Type::kShutdown; }, 2000ms));
}

// ---------------------------------------------------------------------------------------------
// Scale and backpressure
// ---------------------------------------------------------------------------------------------

TEST_F(EngineTest, BroadcastReachesTwoHundredConnections) {
  start(2);
  const auto ch = add_channel(relay_channel("/ws/many"));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(connect("/ws/many?doc=big"));
    ASSERT_TRUE(clients.back()) << "client " << i;
  }
  EXPECT_EQ(engine_->room_size(ch, "big"), 200u);
  EXPECT_EQ(engine_->connection_count(ch), 200u);
  EXPECT_EQ(engine_->stats().connections, 200u);

  engine_->broadcast(ch, "big", "to all 200", false);
  int received = 0;
  for (auto& c : clients) received += IsMessage(c->next_frame(), ws::kText, "to all 200") ? 1 : 0;
  EXPECT_EQ(received, 200);

  // And a relay from one member fans out to the 199 others.
  ASSERT_TRUE(clients[0]->send_binary("fan out"));
  received = 0;
  for (std::size_t i = 1; i < clients.size(); ++i) {
    received += IsMessage(clients[i]->next_frame(), ws::kBinary, "fan out") ? 1 : 0;
  }
  EXPECT_EQ(received, 199);
  engine_->broadcast(ch, "", "marker", false);
  EXPECT_TRUE(IsMessage(clients[0]->next_frame(), ws::kText, "marker"));
}

TEST_F(EngineTest, BackpressureDropsAPeerThatDoesNotRead) {
  start();
  auto cfg = relay_channel("/ws/bp");
  cfg.max_queued_bytes = 64 * 1024;
  const auto ch = add_channel(cfg, false, false, /*close=*/true);
  auto reader = connect("/ws/bp?doc=x");
  auto stuck = connect("/ws/bp?doc=x", "", /*client_rcvbuf=*/16 * 1024);  // never reads
  ASSERT_TRUE(reader && stuck);

  // ~20 MB in 64 KB messages, paced by the reader so that only the stuck peer falls behind.
  constexpr int kMessages = 320;
  int delivered = 0;
  for (int i = 0; i < kMessages; ++i) {
    std::string payload = binary_payload(64 * 1024, static_cast<std::uint32_t>(i));
    engine_->broadcast(ch, "x", payload, true);
    const auto f = reader->next_frame();
    ASSERT_TRUE(IsMessage(f, ws::kBinary, payload)) << "message " << i;
    ++delivered;
  }
  EXPECT_EQ(delivered, kMessages);

  const bool dropped = wait_until([&] { return engine_->stats().backpressure_drops >= 1; });
  EXPECT_TRUE(dropped) << "a peer with " << kMessages * 64 << " KiB queued against a limit of 64 KiB was never dropped";
  if (dropped) {
    const auto ev = sink_->wait_for(Event::Type::kClose, stuck->id);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->code, ws::kPolicyViolation);
    EXPECT_TRUE(wait_until([&] { return engine_->connection_count(ch) == 1; }));
    EXPECT_TRUE(stuck->wait_eof());  // what was in flight drains, then the connection ends
  }
  EXPECT_EQ(sink_->count([&](const Event& e) { return e.type == Event::Type::kClose && e.client == reader->id; }), 0u);

  // The reader is unaffected.
  engine_->broadcast(ch, "x", "after", false);
  EXPECT_TRUE(IsMessage(reader->next_frame(), ws::kText, "after"));
}

// ------------------------------------------------------------------------------ Engine::listen

namespace {
int connect_to(std::uint16_t port) {
  const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(c, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(c);
    return -1;
  }
  return c;
}
}  // namespace

TEST_F(EngineTest, ListenAnswersChannelUpgradesAndHandsEverythingElseOverUnread) {
  start();
  sw::ChannelConfig config;
  config.path = "/ws/echo";
  config.room_query = "room";
  config.relay = true;
  add_channel(config);
  const std::uint16_t port = engine_->listen("127.0.0.1", 0, 64);
  ASSERT_GT(port, 0);

  // Two upgrades taken by the engine itself: the relay works between them.
  std::vector<std::unique_ptr<Client>> peers;
  for (int i = 0; i < 2; ++i) {
    const int c = connect_to(port);
    ASSERT_GE(c, 0);
    ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
    auto client = std::make_unique<Client>(c, static_cast<std::uint32_t>(rng_()));
    const std::string key = new_key();
    ASSERT_TRUE(client->write_all("GET /ws/echo?room=r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    const auto head = client->read_http_head();
    ASSERT_TRUE(head.has_value());
    EXPECT_NE(head->find("101 Switching Protocols"), std::string::npos) << *head;
    EXPECT_NE(head->find(ws::accept_key(key)), std::string::npos);
    peers.push_back(std::move(client));
  }
  ASSERT_TRUE(peers[0]->send_text("over the listener"));
  const auto got = peers[1]->next_frame();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload, "over the listener");

  // A page request is handed over with nothing read from it.
  const std::string page = "GET /tickets HTTP/1.1\r\nHost: x\r\n\r\n";
  const int c = connect_to(port);
  ASSERT_GE(c, 0);
  ASSERT_EQ(::send(c, page.data(), page.size(), 0), static_cast<ssize_t>(page.size()));
  const auto handoff = sink_->wait_for([](const Event& e) { return e.type == Event::Type::kHandoff; });
  ASSERT_TRUE(handoff.has_value());
  const int fd = static_cast<int>(handoff->number);
  ASSERT_GE(fd, 0);
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), page);
  ::close(fd);
  ::close(c);

  // Stopping: new connections are refused; open ones carry on.
  engine_->stop_listening();
  EXPECT_EQ(connect_to(port), -1);
  ASSERT_TRUE(peers[1]->send_text("still open"));
  const auto again = peers[0]->next_frame();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->payload, "still open");
}

TEST_F(EngineTest, ListenOnAPortInUseThrowsWithTheReason) {
  start();
  const std::uint16_t port = engine_->listen("127.0.0.1", 0, 16);
  auto sink = std::make_shared<RecordingSink>();
  sw::Engine other(sw::EngineOptions{}, sink);
  try {
    other.listen("127.0.0.1", port, 16);
    ADD_FAILURE() << "listen on a port in use did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
}

TEST_F(EngineTest, ListenWithSeveralAcceptQueuesKeepsThePortToItself) {
  start();
  sw::ChannelConfig config;
  config.path = "/ws/q";
  add_channel(config);
  const std::uint16_t port = engine_->listen("127.0.0.1", 0, 64, 4);
  // Another engine asking for the same port with SO_REUSEPORT of its own must not join.
  sw::Engine other(sw::EngineOptions{}, std::make_shared<RecordingSink>());
  EXPECT_THROW(other.listen("127.0.0.1", port, 64, 4), std::runtime_error);
  // Connections spread over the queues all get answered.
  for (int i = 0; i < 40; ++i) {
    const int c = connect_to(port);
    ASSERT_GE(c, 0);
    ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
    Client client(c, static_cast<std::uint32_t>(rng_()));
    ASSERT_TRUE(client.write_all("GET /ws/q HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: " + new_key() + "\r\nSec-WebSocket-Version: 13\r\n\r\n"));
    const auto head = client.read_http_head();
    ASSERT_TRUE(head.has_value());
    EXPECT_NE(head->find("101 Switching Protocols"), std::string::npos);
  }
}

// Coalesced writes (EngineOptions::write_delay_us): frames queued within the delay go out
// together, in order, with far fewer sendmsg calls than frames.
TEST_F(EngineTest, WriteDelayCoalescesFramesIntoFewWrites) {
  start(1, 3000, /*write_delay_us=*/50'000);
  sw::ChannelConfig cfg;
  cfg.path = "/ws/c";
  const auto ch = add_channel(cfg);
  auto c1 = connect("/ws/c");
  auto c2 = connect("/ws/c");
  ASSERT_TRUE(c1 && c2);
  ASSERT_TRUE(wait_until([&] { return engine_->connection_count(ch) == 2; }));
  std::this_thread::sleep_for(100ms);  // the 101s are written
  const auto writes_before = engine_->stats().writes;
  constexpr int kMessages = 40;  // under one write's 64 frames
  for (int i = 0; i < kMessages; ++i) engine_->broadcast(ch, "", "m" + std::to_string(i), false);
  for (auto* c : {c1.get(), c2.get()}) {
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(IsMessage(c->next_frame(), ws::kText, "m" + std::to_string(i))) << i;
  }
  const auto writes = engine_->stats().writes - writes_before;
  // Without the delay each broadcast is its own turn and write; with it, a handful at most
  // (the loop may straddle a timer tick on a slow machine).
  EXPECT_LE(writes, 2u * 4) << writes;
  EXPECT_GE(writes, 2u);
}

TEST_F(EngineTest, WriteDelayHoldsAFrameForTheDelayButNoLonger) {
  start(1, 3000, /*write_delay_us=*/300'000);
  auto c = one_client_after(400ms);
  ASSERT_TRUE(c);
  const auto t0 = Clock::now();
  engine_->send(c->id, "late", false);
  ASSERT_TRUE(IsMessage(c->next_frame(), ws::kText, "late"));
  const auto held = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  EXPECT_GE(held.count(), 250) << "the frame did not wait for the delay";
  EXPECT_LT(held.count(), 3000);
}

TEST_F(EngineTest, WriteDelayDoesNotHoldAQueueThatFillsAWrite) {
  start(1, 3000, /*write_delay_us=*/1'000'000);
  auto c = one_client_after(1200ms);  // the 101 went out with the first timer
  ASSERT_TRUE(c);
  const auto t0 = Clock::now();
  for (int i = 0; i < 70; ++i) engine_->send(c->id, "f" + std::to_string(i), false);
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(IsMessage(c->next_frame(), ws::kText, "f" + std::to_string(i))) << i;
  const auto first_write = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
  EXPECT_LT(first_write.count(), 800) << "a full write waited for the delay";
  for (int i = 64; i < 70; ++i) ASSERT_TRUE(IsMessage(c->next_frame(), ws::kText, "f" + std::to_string(i))) << i;
}

// A shutdown does not wait for the write delay: what is held goes out with the 1001 close,
// even when the drain is shorter than the delay.
TEST_F(EngineTest, WriteDelayDoesNotHoldFramesPastAShutdown) {
  start(1, 3000, /*write_delay_us=*/1'000'000);
  auto c = one_client_after(1200ms);
  ASSERT_TRUE(c);
  engine_->send(c->id, "held", false);  // waits for the delay's timer
  std::this_thread::sleep_for(50ms);
  const auto t0 = Clock::now();
  engine_->shutdown(20ms);
  ASSERT_TRUE(IsMessage(c->next_frame(), ws::kText, "held"));
  EXPECT_TRUE(IsClose(c->next_frame(), ws::kGoingAway));
  EXPECT_LT(Clock::now() - t0, 800ms) << "the frames waited for the delay";
}
