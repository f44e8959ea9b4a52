// Unit tests for the opening-handshake checks and the query helpers (native/net/http_upgrade.*).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "net/http_upgrade.hpp"

namespace http = sidewire::http;
using sidewire::UpgradeRequest;

namespace {

constexpr const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

UpgradeRequest valid_request() {
  UpgradeRequest r;
  r.method = "GET";
  r.target = "/ws/fabric?documentId=a";
  r.headers = {{"Host", "localhost"},
               {"Upgrade", "websocket"},
               {"Connection", "Upgrade"},
               {"Sec-WebSocket-Key", kKey},
               {"Sec-WebSocket-Version", "13"}};
  return r;
}

UpgradeRequest with_header(UpgradeRequest r, const std::string& name, const std::string& value) {
  for (auto& [k, v] : r.headers) {
    if (k == name) {
      v = value;
      return r;
    }
  }
  r.headers.emplace_back(name, value);
  return r;
}

UpgradeRequest without_header(UpgradeRequest r, const std::string& name) {
  std::erase_if(r.headers, [&](const auto& h) { return h.first == name; });
  return r;
}

}  // namespace

TEST(CheckUpgrade, ValidRequestIs101WithRfcAccept) {
  const auto c = http::check_websocket_upgrade(valid_request());
  EXPECT_EQ(c.status, 101);
  EXPECT_EQ(c.accept, kAccept);
}

TEST(CheckUpgrade, NonGetIs405) {
  for (const char* m : {"POST", "PUT", "HEAD", "get", ""}) {
    UpgradeRequest r = valid_request();
    r.method = m;
    const auto c = http::check_websocket_upgrade(r);
    EXPECT_EQ(c.status, 405) << m;
    EXPECT_FALSE(c.message.empty());
    EXPECT_TRUE(c.accept.empty());
  }
}

TEST(CheckUpgrade, UpgradeHeader) {
  EXPECT_EQ(http::check_websocket_upgrade(without_header(valid_request(), "Upgrade")).status, 400);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Upgrade", "h2c")).status, 400);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Upgrade", "")).status, 400);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Upgrade", "websockets")).status, 400);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Upgrade", "WebSocket")).status, 101);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Upgrade", "h2c, websocket")).status, 101);
}

TEST(CheckUpgrade, ConnectionHeader) {
  EXPECT_EQ(http::check_websocket_upgrade(without_header(valid_request(), "Connection")).status, 400);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Connection", "keep-alive")).status, 400);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Connection", "close")).status, 400);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Connection", "upgraded")).status, 400);
  // Firefox sends "keep-alive, Upgrade".
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Connection", "keep-alive, Upgrade")).status, 101);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Connection", "keep-alive,Upgrade")).status, 101);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Connection", "  upgrade\t")).status, 101);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Connection", "UPGRADE, keep-alive")).status, 101);
}

TEST(CheckUpgrade, HeaderNamesAreCaseInsensitive) {
  UpgradeRequest r;
  r.method = "GET";
  r.target = "/ws";
  r.headers = {{"upgrade", "websocket"},
               {"CONNECTION", "Upgrade"},
               {"sec-websocket-key", kKey},
               {"SEC-WEBSOCKET-VERSION", "13"}};
  const auto c = http::check_websocket_upgrade(r);
  EXPECT_EQ(c.status, 101);
  EXPECT_EQ(c.accept, kAccept);
  ASSERT_NE(http::find_header(r, "Sec-WebSocket-Key"), nullptr);
  EXPECT_EQ(*http::find_header(r, "Sec-WebSocket-Key"), kKey);
  EXPECT_EQ(http::find_header(r, "Origin"), nullptr);
}

TEST(CheckUpgrade, VersionOtherThan13Is426) {
  for (const char* v : {"8", "12", "14", "", "13, 8"}) {
    const auto c = http::check_websocket_upgrade(with_header(valid_request(), "Sec-WebSocket-Version", v));
    EXPECT_EQ(c.status, 426) << v;
  }
  EXPECT_EQ(http::check_websocket_upgrade(without_header(valid_request(), "Sec-WebSocket-Version")).status, 426);
  EXPECT_EQ(http::check_websocket_upgrade(with_header(valid_request(), "Sec-WebSocket-Version", " 13 ")).status, 101);
}

TEST(CheckUpgrade, ErrorResponse426CarriesSupportedVersion) {
  const std::string r = http::error_response(426, "need 13");
  EXPECT_EQ(r.rfind("HTTP/1.1 426 Upgrade Required\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos) << r;
  const std::string r400 = http::error_response(400, "bad");
  EXPECT_EQ(r400.find("Sec-WebSocket-Version"), std::string::npos) << r400;
}

TEST(CheckUpgrade, BadKeyIs400) {
  const std::vector<std::string> bad = {
      "",
      "not base64 at all!",
      "dGhlIHNhbXBsZSBub25jZQ",        // padding missing
      "dGhlIHNhbXBsZSBub25j",          // 15 bytes
      "dGhlIHNhbXBsZSBub25jZWU=",      // 17 bytes
      "dGhlIHNhbXBsZSBub25jZQ==dGhl",  // junk after the padding
      "dGhlIHNhbXBsZSBub25jZQ-=",      // base64url
  };
  for (const auto& key : bad) {
    const auto c = http::check_websocket_upgrade(with_header(valid_request(), "Sec-WebSocket-Key", key));
    EXPECT_EQ(c.status, 400) << '"' << key << '"';
  }
  EXPECT_EQ(http::check_websocket_upgrade(without_header(valid_request(), "Sec-WebSocket-Key")).status, 400);
  // Surrounding whitespace is not part of the value.
  const auto c = http::check_websocket_upgrade(with_header(valid_request(), "Sec-WebSocket-Key", std::string(" ") + kKey + " "));
  EXPECT_EQ(c.status, 101);
  EXPECT_EQ(c.accept, kAccept);
}

TEST(CheckUpgrade, ChecksRunInOrder) {
  // A POST without any header is refused for the method, not for the headers.
  UpgradeRequest r;
  r.method = "POST";
  EXPECT_EQ(http::check_websocket_upgrade(r).status, 405);
  r.method = "GET";
  EXPECT_EQ(http::check_websocket_upgrade(r).status, 400);
}

TEST(Responses, SwitchingProtocols) {
  const std::string r = http::switching_protocols_response(kAccept);
  EXPECT_EQ(r.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_NE(r.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(r.find("\r\nConnection: Upgrade\r\n"), std::string::npos);
  EXPECT_NE(r.find(std::string("\r\nSec-WebSocket-Accept: ") + kAccept + "\r\n"), std::string::npos);
  EXPECT_EQ(r.substr(r.size() - 4), "\r\n\r\n");
  EXPECT_EQ(r.find("\r\n\r\n"), r.size() - 4);  // nothing after the head
}

TEST(Responses, ErrorResponseIsCompleteHttp) {
  const std::string r = http::error_response(404, "no channel");
  EXPECT_EQ(r.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("\r\nConnection: close\r\n"), std::string::npos);
  const std::size_t head_end = r.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const std::string body = r.substr(head_end + 4);
  EXPECT_EQ(body, "no channel\n");
  EXPECT_NE(r.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos) << r;
  EXPECT_STREQ(http::status_text(400), "Bad Request");
  EXPECT_STREQ(http::status_text(405), "Method Not Allowed");
  EXPECT_STREQ(http::status_text(426), "Upgrade Required");
  EXPECT_STREQ(http::status_text(503), "Service Unavailable");
}

TEST(HasToken, CommaSeparatedCaseInsensitive) {
  EXPECT_TRUE(http::has_token("Upgrade", "upgrade"));
  EXPECT_TRUE(http::has_token("keep-alive, Upgrade", "upgrade"));
  EXPECT_TRUE(http::has_token("a,b , c", "c"));
  EXPECT_TRUE(http::has_token("a,,upgrade,", "upgrade"));
  EXPECT_FALSE(http::has_token("", "upgrade"));
  EXPECT_FALSE(http::has_token("upgrade-insecure", "upgrade"));
  EXPECT_FALSE(http::has_token("x-upgrade, keep-alive", "upgrade"));
}

TEST(Target, PathOf) {
  EXPECT_EQ(http::path_of("/ws/fabric"), "/ws/fabric");
  EXPECT_EQ(http::path_of("/ws/fabric?documentId=a"), "/ws/fabric");
  EXPECT_EQ(http::path_of("/ws/fabric#frag"), "/ws/fabric");
  EXPECT_EQ(http::path_of("/ws?"), "/ws");
  EXPECT_EQ(http::path_of("?x=1"), "");
  EXPECT_EQ(http::path_of(""), "");
}

TEST(Target, QueryOf) {
  EXPECT_EQ(http::query_of("/ws/fabric"), "");
  EXPECT_EQ(http::query_of("/ws?documentId=a&b=c"), "documentId=a&b=c");
  EXPECT_EQ(http::query_of("/ws?documentId=a#frag"), "documentId=a");
  EXPECT_EQ(http::query_of("/ws?"), "");
}

TEST(Query, Param) {
  const std::string q = "documentId=abc&room=r%201&name=a+b&empty=&flag&dup=1&dup=2";
  EXPECT_EQ(http::query_param(q, "documentId"), "abc");
  EXPECT_EQ(http::query_param(q, "room"), "r 1");
  EXPECT_EQ(http::query_param(q, "name"), "a b");
  EXPECT_EQ(http::query_param(q, "empty"), "");
  EXPECT_EQ(http::query_param(q, "flag"), "");
  EXPECT_EQ(http::query_param(q, "dup"), "1");  // the first value
  EXPECT_EQ(http::query_param(q, "missing"), std::nullopt);
  EXPECT_EQ(http::query_param(q, "document"), std::nullopt);  // no prefix match
  EXPECT_EQ(http::query_param("", "a"), std::nullopt);
}

TEST(Query, PercentEncoding) {
  EXPECT_EQ(http::query_param("k=%E6%97%A5%2F%3d%26", "k"), "\xE6\x97\xA5/=&");
  EXPECT_EQ(http::query_param("k=100%25", "k"), "100%");
  EXPECT_EQ(http::query_param("k=a%2Bb", "k"), "a+b");
  EXPECT_EQ(http::query_param("k=%00x", "k"), std::string("\0x", 2));
  // Encoded keys match their decoded form.
  EXPECT_EQ(http::query_param("doc%49d=7", "docId"), "7");
  EXPECT_EQ(http::query_param("my+key=v", "my key"), "v");
}

TEST(Query, MalformedPercentIsNullopt) {
  EXPECT_EQ(http::query_param("k=%zz", "k"), std::nullopt);
  EXPECT_EQ(http::query_param("k=%4", "k"), std::nullopt);
  EXPECT_EQ(http::query_param("k=%", "k"), std::nullopt);
  EXPECT_EQ(http::query_param("k=ab%g1", "k"), std::nullopt);
  EXPECT_EQ(http::query_param("k=%4&x=1", "k"), std::nullopt);
  // A malformed pair elsewhere does not hide a good one.
  EXPECT_EQ(http::query_param("%zz=1&k=v", "k"), "v");
}

TEST(PercentDecode, Direct) {
  EXPECT_EQ(http::percent_decode(""), "");
  EXPECT_EQ(http::percent_decode("plain"), "plain");
  EXPECT_EQ(http::percent_decode("%41%62c"), "Abc");
  EXPECT_EQ(http::percent_decode("a+b"), "a b");
  EXPECT_EQ(http::percent_decode("%4"), std::nullopt);
  EXPECT_EQ(http::percent_decode("x%"), std::nullopt);
  EXPECT_EQ(http::percent_decode("%G0"), std::nullopt);
}

// ------------------------------------------------------------------ parse_request_head (listen)

TEST(ParseRequestHead, RequestLineAndHeadersWithValuesTrimmed) {
  const auto r = http::parse_request_head(
      "GET /ws/fabric?documentId=7 HTTP/1.1\r\nHost: example.test\r\nUpgrade:websocket\r\n"
      "X-Spaced:   a b  \r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->target, "/ws/fabric?documentId=7");
  ASSERT_EQ(r->headers.size(), 3u);
  EXPECT_EQ(r->headers[0], (std::pair<std::string, std::string>{"Host", "example.test"}));
  EXPECT_EQ(r->headers[1].second, "websocket");
  EXPECT_EQ(r->headers[2].second, "a b");
  EXPECT_EQ(*http::find_header(*r, "upgrade"), "websocket");
}

TEST(ParseRequestHead, AnythingUnusualIsLeftToNode) {
  const char* bad[] = {
      "GET /x HTTP/1.1\r\nHost: a\r\n",                       // no empty line: not a whole head
      "GET /x\r\nHost: a\r\n\r\n",                            // no version
      "GET /x HTTP/2.0\r\n\r\n",                              // not HTTP/1.x
      "get /x HTTP/1.1\r\n\r\n",                              // method not upper-case
      "GET x HTTP/1.1\r\n\r\n",                               // target not origin-form
      "GET  /x HTTP/1.1\r\n\r\n",                             // two spaces
      "GET /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",         // obs-fold
      "GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",             // not a header line
      "GET /x HTTP/1.1\r\n: empty name\r\n\r\n",              // empty name
      "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",               // space in the name
  };
  for (const char* head : bad) EXPECT_FALSE(http::parse_request_head(head).has_value()) << head;
}

TEST(ParseRequestHead, HttpOneZeroAndNoHeaders) {
  const auto r = http::parse_request_head("POST /api HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->method, "POST");
  EXPECT_TRUE(r->headers.empty());
}

// Found by tests/fuzz/http_head.cpp (regression inputs in tests/fuzz/corpus/http_head/): heads that
// Node's parser answers with 400 were parsed, and behind engine.listen() a WebSocket upgrade
// carrying one got its 101 from the engine. RFC 9110 5.5: a CR, LF or NUL in a field value is
// "invalid and dangerous"; the request is left to Node instead.
TEST(ParseRequestHead, WhatNodeRefusesIsLeftToNode) {
  const std::string upgrade =
      "GET /ws/fabric HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  ASSERT_TRUE(http::parse_request_head(upgrade + "\r\n").has_value());
  const std::string bad_lines[] = {
      std::string("X: a\0b", 6),                     // NUL in a value
      "X: a\rb",                                     // bare CR
      "X: a\nOrigin: http://evil.example",           // bare LF: one header to us, two to others
      "Cookie: a\x01" "b",                           // any other control character
      "X: a\x7f",                                    // DEL
      "X(y): 1",                                     // a name that is not a token
      "X/y: 1",
      "X\"y: 1",
  };
  for (const std::string& line : bad_lines) {
    EXPECT_FALSE(http::parse_request_head(upgrade + line + "\r\n\r\n").has_value()) << line;
  }
  EXPECT_FALSE(http::parse_request_head("GET /ws/\x01x HTTP/1.1\r\nHost: a\r\n\r\n").has_value());
  EXPECT_FALSE(http::parse_request_head("GET /ws/\x7fx HTTP/1.1\r\nHost: a\r\n\r\n").has_value());
  EXPECT_FALSE(http::parse_request_head("GET /ws/caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n").has_value());

  // What Node takes still parses: HTAB and non-ASCII bytes in a value, every token character.
  const auto ok = http::parse_request_head(upgrade + "X-Tab: a\tb\r\nX-Text: caf\xc3\xa9\r\n!#$%&'*+-.^_`|~09az: 1\r\n\r\n");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*http::find_header(*ok, "x-tab"), "a\tb");
  EXPECT_EQ(*http::find_header(*ok, "x-text"), "caf\xc3\xa9");
  EXPECT_NE(http::find_header(*ok, "!#$%&'*+-.^_`|~09az"), nullptr);
  EXPECT_EQ(http::check_websocket_upgrade(*ok).status, 101);
}

TEST(HttpHelpers, CookieValue) {
  EXPECT_EQ(http::cookie_value("token=abc.def.ghi", "token"), "abc.def.ghi");
  EXPECT_EQ(http::cookie_value("theme=dark;  token = \"q.r.s\" ; x=1", "token"), "q.r.s");
  EXPECT_EQ(http::cookie_value("mytoken=1; token=2", "token"), "2");  // whole names only
  EXPECT_EQ(http::cookie_value("token=", "token"), "");
  EXPECT_FALSE(http::cookie_value("tokenless; a=b", "token").has_value());
  EXPECT_FALSE(http::cookie_value("", "token").has_value());
  EXPECT_TRUE(http::iequals("Authorization", "authorization"));
  EXPECT_FALSE(http::iequals("Authorization", "authorizatio"));
  EXPECT_EQ(http::trim(" \t Bearer x \t"), "Bearer x");
  EXPECT_EQ(http::redact_query("/ws/desk?doc=1&token=a.b.c&x", "token"), "/ws/desk?doc=1&token=***&x");
  EXPECT_EQ(http::redact_query("/socket.io/?token=t&token=u", "token"), "/socket.io/?token=***&token=***");
  EXPECT_EQ(http::redact_query("/ws/desk?mytoken=1", "token"), "/ws/desk?mytoken=1");
  EXPECT_EQ(http::redact_query("/ws/desk", "token"), "/ws/desk");
  EXPECT_EQ(http::redact_query("/ws/desk?token=1", ""), "/ws/desk?token=1");
}
