#include <gtest/gtest.h>

#include "ringway/http/request.h"
#include "ringway/http/response.h"

namespace ringway::http {
namespace {

TEST(Iequals, AsciiCaseInsensitive) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Host", "Hosts"));
  EXPECT_FALSE(iequals("a-b", "a_b"));
  // Folding is ASCII letters only: '@' (0x40) and '`' (0x60) differ by 0x20 but are not letters.
  EXPECT_FALSE(iequals("@", "`"));
  EXPECT_FALSE(iequals("[", "{"));
}

TEST(MethodFromName, KnownAndExtension) {
  EXPECT_EQ(method_from_name("GET"), Method::kGet);
  EXPECT_EQ(method_from_name("HEAD"), Method::kHead);
  EXPECT_EQ(method_from_name("POST"), Method::kPost);
  EXPECT_EQ(method_from_name("PUT"), Method::kPut);
  EXPECT_EQ(method_from_name("DELETE"), Method::kDelete);
  EXPECT_EQ(method_from_name("CONNECT"), Method::kConnect);
  EXPECT_EQ(method_from_name("OPTIONS"), Method::kOptions);
  EXPECT_EQ(method_from_name("TRACE"), Method::kTrace);
  EXPECT_EQ(method_from_name("PATCH"), Method::kPatch);
  EXPECT_EQ(method_from_name("get"), Method::kOther);  // methods are case-sensitive
  EXPECT_EQ(method_from_name("PROPFIND"), Method::kOther);
  EXPECT_EQ(method_from_name(""), Method::kOther);
}

TEST(IsIdempotent, Rfc9110) {
  EXPECT_TRUE(is_idempotent(Method::kGet));
  EXPECT_TRUE(is_idempotent(Method::kHead));
  EXPECT_TRUE(is_idempotent(Method::kPut));
  EXPECT_TRUE(is_idempotent(Method::kDelete));
  EXPECT_TRUE(is_idempotent(Method::kOptions));
  EXPECT_TRUE(is_idempotent(Method::kTrace));
  EXPECT_FALSE(is_idempotent(Method::kPost));
  EXPECT_FALSE(is_idempotent(Method::kPatch));
  EXPECT_FALSE(is_idempotent(Method::kConnect));
  EXPECT_FALSE(is_idempotent(Method::kOther));
}

TEST(HeaderLookup, FirstMatchCaseInsensitive) {
  Request req;
  req.headers[0] = {"Accept", "a"};
  req.headers[1] = {"X-Id", "1"};
  req.headers[2] = {"x-id", "2"};
  req.header_count = 3;
  bool found = false;
  EXPECT_EQ(req.header("X-ID", &found), "1");
  EXPECT_TRUE(found);
  EXPECT_EQ(req.header("missing", &found), "");
  EXPECT_FALSE(found);
  EXPECT_EQ(req.header("accept"), "a");

  Response resp;
  resp.headers[0] = {"Server", "s"};
  resp.header_count = 1;
  EXPECT_EQ(resp.header("SERVER", &found), "s");
  EXPECT_TRUE(found);
  resp.header_count = 0;
  EXPECT_EQ(resp.header("server", &found), "");
  EXPECT_FALSE(found);
}

}  // namespace
}  // namespace ringway::http
