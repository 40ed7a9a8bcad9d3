import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { derive, EMPTY, join } from '../ledger/lattice.js';
import { isoTime, isWooCommercePing, parsePayPal, parseShopify, parseStripe, parseWooCommerce, stripeAmount, type ParsedEvent } from './providers.js';
import { stripeCharge, stripeEvent } from './test-support.js';

/** Each provider's real payload shapes → the facts the ledger joins. */
const one = (p: ParsedEvent) => {
  assert.ok(p.fact, p.ignored);
  return p.fact;
};

describe('Stripe', () => {
  test('charge snapshots: amount, capture, cumulative refunds, order id, payment intent alias', () => {
    const f = one(parseStripe(JSON.parse(stripeEvent('charge.refunded', stripeCharge({ id: 'ch_1', amount: 5000, refunded: 1200, orderId: 'O-1' })))));
    assert.equal(f.target, 'ch_1');
    assert.deepEqual(f.aliases, ['pi_ch_1']);
    assert.deepEqual([f.knowledge.amount, f.knowledge.currency, f.knowledge.captured, f.knowledge.refundedTotal, f.knowledge.orderId], [5000, 'USD', true, 1200, 'O-1']);
    const auth = one(parseStripe(JSON.parse(stripeEvent('charge.succeeded', stripeCharge({ id: 'ch_2', amount: 5000, captured: false })))));
    assert.equal(derive(auth.knowledge).state, 'authorized');
    assert.equal(parseStripe(JSON.parse(stripeEvent('charge.failed', { ...stripeCharge({ id: 'ch_3', amount: 1 }), status: 'failed' }))).fact, null);
  });

  test('payment intents key on their charge; canceled is a void', () => {
    const pi = (status: string) => JSON.parse(stripeEvent(`payment_intent.${status}`, { id: 'pi_9', object: 'payment_intent', amount: 2500, currency: 'eur', status, latest_charge: 'ch_9', created: 1717000000, metadata: { order_id: 'O-9' } }));
    const ok = one(parseStripe(pi('succeeded')));
    assert.deepEqual([ok.target, ok.aliases, ok.knowledge.captured, ok.knowledge.currency, ok.knowledge.orderId], ['ch_9', ['pi_9'], true, 'EUR', 'O-9']);
    assert.equal(derive(one(parseStripe(pi('requires_capture'))).knowledge).state, 'authorized');
    assert.equal(one(parseStripe(pi('canceled'))).knowledge.voided, true);
    const noCharge = JSON.parse(stripeEvent('payment_intent.created', { id: 'pi_0', object: 'payment_intent', amount: 1, currency: 'usd', status: 'requires_payment_method', latest_charge: null }));
    assert.equal(parseStripe(noCharge).fact, null);
  });

  test('refund and dispute objects; a lost dispute is a chargeback', () => {
    const refund = one(parseStripe(JSON.parse(stripeEvent('refund.created', { id: 're_1', object: 'refund', amount: 300, charge: 'ch_1', currency: 'usd', status: 'succeeded' }))));
    assert.deepEqual([refund.target, refund.knowledge.amount, refund.knowledge.refunds], ['ch_1', null, { re_1: 300 }]);
    const dispute = (status: string) => one(parseStripe(JSON.parse(stripeEvent(`charge.dispute.${status === 'lost' ? 'closed' : 'created'}`, { id: 'dp_1', object: 'dispute', amount: 5000, charge: 'ch_1', currency: 'usd', status }))));
    assert.deepEqual(dispute('needs_response').knowledge.chargebacks, {});
    assert.deepEqual(dispute('lost').knowledge.chargebacks, { dp_1: 5000 });
    const k = join(join(one(parseStripe(JSON.parse(stripeEvent('charge.captured', stripeCharge({ id: 'ch_1', amount: 5000 }))))).knowledge, dispute('lost').knowledge), dispute('needs_response').knowledge);
    assert.deepEqual(derive(k), { state: 'chargeback', capturedCents: 5000, refundedCents: 0, chargebackCents: 5000, netCents: 0 });
    assert.equal(k.disputes.dp_1, 'lost', 'a final dispute status outranks an earlier open one');
  });

  test("Stripe's currency special cases against ISO exponents", () => {
    assert.equal(stripeAmount(500, 'JPY', 'a'), 500);
    assert.equal(stripeAmount(1234, 'KWD', 'a'), 1234);
    assert.equal(stripeAmount(50000, 'ISK', 'a'), 500, 'ISK is sent with two decimals; ISO has none');
    assert.equal(stripeAmount(500, 'MGA', 'a'), 50000, 'MGA is zero-decimal at Stripe; ISO has two');
    assert.throws(() => stripeAmount(50050, 'ISK', 'a'), { code: 'amount_precision_invalid' });
    assert.throws(() => stripeAmount(2 ** 31, 'USD', 'a'), { code: 'amount_out_of_range' });
  });
});

describe('Shopify', () => {
  const order = (financial_status: string, extra: Record<string, unknown> = {}) => ({
    id: 450789469, admin_graphql_api_id: 'gid://shopify/Order/450789469', name: '#1001', total_price: '409.94', currency: 'USD',
    financial_status, processed_at: '2024-06-01T12:00:00-04:00', refunds: [], ...extra,
  });
  test('orders: total_price exactly, financial_status to state, refunds by transaction', () => {
    const paid = one(parseShopify('orders/paid', order('paid')));
    assert.deepEqual([paid.target, paid.knowledge.amount, paid.knowledge.orderId, paid.knowledge.occurredAt], ['450789469', 40994, '450789469', '2024-06-01T16:00:00.000Z']);
    assert.equal(derive(one(parseShopify('orders/create', order('authorized'))).knowledge).state, 'authorized');
    const partly = one(parseShopify('orders/updated', order('partially_refunded', {
      refunds: [{ id: 1, transactions: [{ id: 77, kind: 'refund', status: 'success', amount: '9.94', currency: 'USD' }, { id: 78, kind: 'refund', status: 'failure', amount: '5.00' }] }],
    })));
    assert.deepEqual(partly.knowledge.refunds, { 'transaction:77': 994 });
    assert.equal(parseShopify('orders/create', order('pending')).fact, null);
    assert.equal(one(parseShopify('orders/cancelled', order('voided'))).knowledge.voided, true);
  });
  test('refunds, transactions and disputes name the order; the same refund transaction is not counted twice', () => {
    const refund = one(parseShopify('refunds/create', { id: 9, order_id: 450789469, transactions: [{ id: 77, kind: 'refund', status: 'success', amount: '9.94', currency: 'USD' }] }));
    assert.deepEqual([refund.target, refund.knowledge.refunds], ['450789469', { 'transaction:77': 994 }]);
    const tx = one(parseShopify('order_transactions/create', { id: 77, order_id: 450789469, kind: 'refund', status: 'success', amount: '9.94', currency: 'USD' }));
    const snapshot = one(parseShopify('orders/updated', order('partially_refunded', { refunds: [{ id: 9, transactions: [{ id: 77, kind: 'refund', status: 'success', amount: '9.94' }] }] })));
    assert.equal(derive([refund, tx, snapshot].map((f) => f.knowledge).reduce(join, EMPTY)).refundedCents, 994);
    assert.equal(one(parseShopify('order_transactions/create', { id: 5, order_id: 450789469, kind: 'capture', status: 'success', amount: '409.94', currency: 'USD' })).knowledge.captured, true);
    const lost = one(parseShopify('disputes/update', { id: 3, order_id: 450789469, type: 'chargeback', amount: '409.94', currency: 'USD', status: 'lost' }));
    assert.deepEqual(lost.knowledge.chargebacks, { '3': 40994 });
    const inquiry = one(parseShopify('disputes/create', { id: 4, order_id: 450789469, type: 'inquiry', amount: '1.00', currency: 'USD', status: 'needs_response' }));
    assert.deepEqual(inquiry.knowledge.chargebacks, {});
  });
  test('amounts finer than the minor unit and unknown currencies are refused', () => {
    assert.throws(() => parseShopify('orders/paid', order('paid', { total_price: '1.005' })), { code: 'amount_precision_invalid' });
    assert.throws(() => parseShopify('orders/paid', order('paid', { currency: 'ZZZ' })), { code: 'currency_invalid' });
    assert.throws(() => parseShopify('orders/paid', order('paid', { admin_graphql_api_id: undefined, id: 2 ** 60 })), { code: 'ledger_fact_invalid' });
  });
});

describe('Shopify multi-currency', () => {
  const order = (refunds: unknown[] = []) => ({
    id: 5150, admin_graphql_api_id: 'gid://shopify/Order/5150', total_price: '109.00', currency: 'USD', presentment_currency: 'EUR',
    total_price_set: { shop_money: { amount: '109.00', currency_code: 'USD' }, presentment_money: { amount: '100.00', currency_code: 'EUR' } },
    financial_status: refunds.length ? 'partially_refunded' : 'paid', processed_at: '2024-06-01T12:00:00Z', refunds,
  });
  test('the payment is keyed on the presentment currency its refunds and transactions are in', () => {
    const paid = one(parseShopify('orders/paid', order()));
    assert.deepEqual([paid.knowledge.amount, paid.knowledge.currency], [10000, 'EUR']);
    const eurRefund = { id: 61, kind: 'refund', status: 'success', amount: '20.00', currency: 'EUR' };
    const partly = one(parseShopify('orders/updated', order([{ id: 9, transactions: [eurRefund] }])));
    assert.deepEqual([partly.knowledge.currency, partly.knowledge.refunds], ['EUR', { 'transaction:61': 2000 }]);
    const created = one(parseShopify('refunds/create', { id: 9, order_id: 5150, transactions: [eurRefund] }));
    assert.deepEqual([created.knowledge.currency, created.knowledge.refunds], ['EUR', { 'transaction:61': 2000 }]);
    const k = [paid, partly, created].map((f) => f.knowledge).reduce(join, EMPTY);
    assert.deepEqual(derive(k), { state: 'captured', capturedCents: null, refundedCents: 2000, chargebackCents: 0, netCents: 8000 });
    assert.throws(() => parseShopify('orders/updated', order([{ id: 9, transactions: [{ ...eurRefund, currency: 'USD' }] }])), { code: 'ledger_currency_mismatch' });
  });
});

describe('WooCommerce', () => {
  const order = (status: string, refunds: unknown[] = []) => ({ id: 727, number: '727', status, currency: 'KWD', total: '12.500', date_paid_gmt: '2024-06-02T09:01:00', refunds });
  test('statuses: processing/completed captured, on-hold authorized, refunded, cancelled; pending ignored', () => {
    const paid = one(parseWooCommerce('order.updated', order('completed')));
    assert.deepEqual([paid.knowledge.amount, paid.knowledge.currency, paid.knowledge.occurredAt], [12500, 'KWD', '2024-06-02T09:01:00.000Z']);
    assert.equal(derive(one(parseWooCommerce('order.created', order('on-hold'))).knowledge).state, 'authorized');
    assert.equal(derive(one(parseWooCommerce('order.updated', order('refunded'))).knowledge).state, 'refunded');
    assert.equal(one(parseWooCommerce('order.updated', order('cancelled'))).knowledge.voided, true);
    assert.equal(parseWooCommerce('order.updated', order('pending')).fact, null);
    assert.equal(parseWooCommerce('product.updated', { id: 1 }).fact, null);
    const partial = one(parseWooCommerce('order.updated', order('processing', [{ id: 9, total: '-2.250' }])));
    assert.deepEqual(partial.knowledge.refunds, { 'refund:9': 2250 });
  });
  test('the creation ping is recognised exactly', () => {
    assert.equal(isWooCommercePing(Buffer.from('webhook_id=15')), true);
    assert.equal(isWooCommercePing(Buffer.from('webhook_id=15&x=1')), false);
    assert.equal(isWooCommercePing(Buffer.from('{"webhook_id":15}')), false);
  });
});

describe('PayPal', () => {
  const ev = (event_type: string, resource: Record<string, unknown>) => ({ id: 'WH-1', event_type, create_time: '2024-06-03T12:00:00Z', resource });
  test('an authorization and its capture are one payment; refunds and reversals find it by the capture', () => {
    const auth = one(parsePayPal(ev('PAYMENT.AUTHORIZATION.CREATED', { id: 'AUTH1', status: 'CREATED', amount: { currency_code: 'JPY', value: '1500' }, invoice_id: 'INV-1' })));
    assert.deepEqual([auth.target, auth.knowledge.amount, auth.knowledge.currency, auth.knowledge.orderId, derive(auth.knowledge).state], ['AUTH1', 1500, 'JPY', 'INV-1', 'authorized']);
    const cap = one(parsePayPal(ev('PAYMENT.CAPTURE.COMPLETED', { id: 'CAP1', status: 'COMPLETED', amount: { currency_code: 'JPY', value: '1500' }, supplementary_data: { related_ids: { authorization_id: 'AUTH1', order_id: 'ORDER1' } } })));
    assert.deepEqual([cap.target, cap.aliases, cap.knowledge.captured, cap.knowledge.orderId], ['AUTH1', ['CAP1'], true, 'ORDER1']);
    const direct = one(parsePayPal(ev('PAYMENT.CAPTURE.COMPLETED', { id: 'CAP2', status: 'COMPLETED', amount: { currency_code: 'USD', value: '5.00' } })));
    assert.deepEqual([direct.target, direct.aliases], ['CAP2', []]);
    const up = [{ rel: 'up', href: 'https://api.paypal.com/v2/payments/captures/CAP1' }];
    const refund = one(parsePayPal(ev('PAYMENT.CAPTURE.REFUNDED', { id: 'R1', status: 'COMPLETED', amount: { currency_code: 'JPY', value: '500' }, seller_payable_breakdown: { total_refunded_amount: { currency_code: 'JPY', value: '500' } }, links: up })));
    assert.deepEqual([refund.target, refund.knowledge.refunds, refund.knowledge.refundedTotal], ['CAP1', { R1: 500 }, 500]);
    const reversed = one(parsePayPal(ev('PAYMENT.CAPTURE.REVERSED', { id: 'R2', status: 'COMPLETED', amount: { currency_code: 'JPY', value: '1500' }, links: up })));
    assert.deepEqual(reversed.knowledge.chargebacks, { R2: 1500 });
    assert.equal(one(parsePayPal(ev('PAYMENT.AUTHORIZATION.VOIDED', { id: 'AUTH1', amount: { currency_code: 'JPY', value: '1500' } }))).knowledge.voided, true);
    assert.throws(() => parsePayPal(ev('PAYMENT.CAPTURE.REFUNDED', { id: 'R3', status: 'COMPLETED', amount: { currency_code: 'JPY', value: '5' }, links: [] })), { code: 'ledger_fact_invalid' });
  });
  test('disputes are status only (money comes from REFUNDED / REVERSED): a lost dispute and its reversal count once', () => {
    const d = (outcome?: string) => one(parsePayPal(ev('CUSTOMER.DISPUTE.RESOLVED', {
      dispute_id: 'PP-D-1', status: 'RESOLVED', dispute_amount: { currency_code: 'USD', value: '3.00' },
      disputed_transactions: [{ seller_transaction_id: 'CAP2' }], ...(outcome ? { dispute_outcome: { outcome_code: outcome } } : {}),
    })));
    assert.deepEqual([d('RESOLVED_BUYER_FAVOUR').knowledge.chargebacks, d('RESOLVED_BUYER_FAVOUR').knowledge.disputes], [{}, { 'PP-D-1': 'resolved_buyer_favour' }]);
    assert.deepEqual(d('RESOLVED_SELLER_FAVOUR').knowledge.chargebacks, {});
    const capture = one(parsePayPal(ev('PAYMENT.CAPTURE.COMPLETED', { id: 'CAP2', status: 'COMPLETED', amount: { currency_code: 'USD', value: '10.00' } })));
    const reversal = one(parsePayPal(ev('PAYMENT.CAPTURE.REVERSED', {
      id: 'REV-1', status: 'COMPLETED', amount: { currency_code: 'USD', value: '3.00' }, links: [{ rel: 'up', href: 'https://api.paypal.com/v2/payments/captures/CAP2' }],
    })));
    const k = [capture, reversal, d('RESOLVED_BUYER_FAVOUR')].map((f) => f.knowledge).reduce(join, EMPTY);
    assert.deepEqual(derive(k), { state: 'chargeback', capturedCents: 1000, refundedCents: 0, chargebackCents: 300, netCents: 700 }, 'the 3.00 lost once, not twice');
    assert.equal(d('RESOLVED_SELLER_FAVOUR').target, 'CAP2');
    assert.equal(parsePayPal(ev('BILLING.SUBSCRIPTION.CREATED', {})).fact, null);
  });
});

test('provider times: Unix seconds or date-time strings within years 1970-9999, anything else unknown', () => {
  assert.equal(isoTime(1717000000), '2024-05-29T16:26:40.000Z');
  assert.equal(isoTime('2024-06-01T12:00:00-04:00'), '2024-06-01T16:00:00.000Z');
  assert.equal(isoTime('9999-12-31T23:59:59.999Z'), '9999-12-31T23:59:59.999Z');
  for (const bad of [9e12, 8.64e15 / 1000 + 1, -1, Infinity, '+010000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', 'soon', null, {}]) {
    assert.equal(isoTime(bad), null, JSON.stringify(bad));
  }
});

test('partial captures: verified revenue counts what was captured (PayPal captures, Stripe amount_captured, Shopify total - outstanding)', () => {
  const pp = (event_type: string, resource: Record<string, unknown>) => ({ id: 'WH-P', event_type, create_time: '2024-06-03T12:00:00Z', resource });
  const auth = one(parsePayPal(pp('PAYMENT.AUTHORIZATION.CREATED', { id: 'AUTH5', amount: { currency_code: 'USD', value: '100.00' } })));
  const cap = one(parsePayPal(pp('PAYMENT.CAPTURE.COMPLETED', {
    id: 'CAP5', status: 'COMPLETED', amount: { currency_code: 'USD', value: '80.00' }, supplementary_data: { related_ids: { authorization_id: 'AUTH5' } },
  })));
  for (const k of [join(auth.knowledge, cap.knowledge), join(cap.knowledge, auth.knowledge)]) {
    const d = derive({ ...k, amount: 10000 });
    assert.deepEqual([d.state, d.capturedCents, d.netCents], ['captured', 8000, 8000]);
  }
  const charge = one(parseStripe(JSON.parse(stripeEvent('charge.captured', { ...stripeCharge({ id: 'ch_part', amount: 1000 }), amount_captured: 600 }))));
  assert.deepEqual([derive(charge.knowledge).capturedCents, derive(charge.knowledge).netCents], [600, 600]);
  const refundAll = join(charge.knowledge, { ...EMPTY, refunds: { re_1: 600 } });
  assert.equal(derive(refundAll).state, 'refunded', 'refunding all that was captured is a full refund');
  const order = (financial_status: string, total_outstanding: string) => ({
    id: 77, name: '#77', total_price: '100.00', currency: 'USD', financial_status, total_outstanding, processed_at: '2024-06-01T12:00:00Z', refunds: [],
  });
  const part = one(parseShopify('orders/updated', order('partially_paid', '40.00')));
  assert.deepEqual([derive(part.knowledge).capturedCents, derive(part.knowledge).netCents], [6000, 6000]);
  const paid = one(parseShopify('orders/paid', order('paid', '0.00')));
  assert.deepEqual(derive(join(part.knowledge, paid.knowledge)).netCents, 10000, 'a later paid snapshot raises it');
});
