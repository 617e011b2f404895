-- 0015: refunds are payments rows too (docs/operations.md "Payments"): a
-- refund bookd made through Stripe is 'refunded' (payment_ref Stripe's re_...
-- id, amount_cents what went back), one Stripe refused for good is
-- 'refund_failed' (flagged; payment_ref the PaymentIntent's id). payment_ref
-- keeps Stripe's own ids from now on (evt_... for webhook outcomes); rows
-- written before keep the decimal hash they had. The CHECK of 0001 is widened
-- in place.

ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
  CHECK (status IN ('succeeded', 'failed', 'mismatch', 'not_pending',
                    'refunded', 'refund_failed'));
