/*
 * hex.h: the value of one hexadecimal digit, for the three places that
 * read hex: chunk sizes (http.c), percent-escapes in a path
 * (http_routes.c) and the Stripe signature (auth.c).
 */
#ifndef BOOKD_HEX_H
#define BOOKD_HEX_H

/* 0..15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for any other byte. */
static inline int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
