/*
 * test_notify_sign.c: the webhook signature (notify_sign) against the
 * Standard Webhooks specification's example: secret
 * "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id "msg_p5jXN8AQM9LWM0D4loKWxJek",
 * timestamp 1614265330, body {"test": 2432232314} give
 * "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; a raw secret signs with
 * its bytes (checked against the whsec_ form of the same key); malformed
 * secrets and a short output buffer are refused.
 */
#include "../../notify/notify.h"
#include "check.h"

#include <errno.h>
#include <string.h>

int main(void)
{
	static const char body[] = "{\"test\": 2432232314}";
	char sig[128], sig2[128];

	CHECK_EQ(notify_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
			     strlen(body), sig, sizeof(sig)),
		 0);
	CHECK_MSG(strcmp(sig,
			 "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") ==
			  0,
		  "got %s\n", sig);

	/* A raw secret is its bytes: "abc" is whsec_ + base64("abc"). */
	CHECK_EQ(notify_sign("abc", "id1", 1, "{}", 2, sig, sizeof(sig)), 0);
	CHECK_EQ(notify_sign("whsec_YWJj", "id1", 1, "{}", 2, sig2,
			     sizeof(sig2)),
		 0);
	CHECK(strcmp(sig, sig2) == 0);
	/* Padding: "ab" is YWI= */
	CHECK_EQ(notify_sign("ab", "i", 2, "x", 1, sig, sizeof(sig)), 0);
	CHECK_EQ(notify_sign("whsec_YWI=", "i", 2, "x", 1, sig2, sizeof(sig2)),
		 0);
	CHECK(strcmp(sig, sig2) == 0);
	/* Another id, timestamp or body: another signature. */
	CHECK_EQ(notify_sign("ab", "i", 3, "x", 1, sig2, sizeof(sig2)), 0);
	CHECK(strcmp(sig, sig2) != 0);

	CHECK_EQ(notify_sign("whsec_", "i", 1, "x", 1, sig, sizeof(sig)),
		 -EINVAL);
	CHECK_EQ(notify_sign("whsec_abc", "i", 1, "x", 1, sig, sizeof(sig)),
		 -EINVAL);
	CHECK_EQ(notify_sign("whsec_!!!!", "i", 1, "x", 1, sig, sizeof(sig)),
		 -EINVAL);
	CHECK_EQ(notify_sign("", "i", 1, "x", 1, sig, sizeof(sig)), -EINVAL);
	CHECK_EQ(notify_sign("ab", "i", 1, "x", 1, sig, 10), -EINVAL);
	return check_end("test_notify_sign", 0);
}
