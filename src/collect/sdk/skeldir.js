// Skeldir tracker, v1: first-party, no cookies, no dependencies (docs/collect.md).
// Served as a classic script at /sdk/v1/skeldir.js and as an ES module at /sdk/v1/skeldir.mjs:
// src/collect/sdk.ts wraps this file, which defines createTracker(win, scriptUrl).
function createTracker(win, scriptUrl) {
  'use strict';
  var STORE = 'skd'; // {a: anonymous id, s: session id, t: last activity (ms), c: campaign of the session, u: user identified, g: consent given}
  var QUEUE = 'skd_q'; // events not yet delivered
  var IDLE_MS = 30 * 60 * 1000; // a visit ends after 30 minutes without a page view
  var MAX_AGE_MS = 7 * 864e5; // the server refuses older events
  var MAX_QUEUE = 100;
  var BATCH = 20;
  var CAMPAIGN = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'gclid', 'gbraid', 'wbraid', 'fbclid', 'ttclid', 'msclkid', 'li_fat_id'];

  var doc = win.document;
  var nav = win.navigator || {};
  var key = null;
  var endpoint = null;
  var options = {};
  var consent = null; // true, false, or null (not decided)
  var memory = null; // the state while nothing may be stored (or storage is unavailable)
  var queue = [];
  var held = null; // the landing touch, while consent is awaited
  var timer = null;
  var delay = 1000;
  var sending = false;

  function now() {
    return Date.now();
  }

  function id() {
    var bytes = new Uint8Array(16);
    win.crypto.getRandomValues(bytes);
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return win.btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // --- storage: only with consent; anything failing (private modes, quotas) falls back to memory
  function storage() {
    try {
      return win.localStorage;
    } catch (e) {
      return null;
    }
  }
  function load(name) {
    var s = storage();
    try {
      return s ? JSON.parse(s.getItem(name) || 'null') : null;
    } catch (e) {
      return null;
    }
  }
  function save(name, value) {
    var s = storage();
    try {
      if (s) s.setItem(name, JSON.stringify(value));
    } catch (e) {}
  }
  function erase() {
    var s = storage();
    try {
      if (s) {
        s.removeItem(STORE);
        s.removeItem(QUEUE);
      }
    } catch (e) {}
  }

  // May this visitor be remembered? Not with Global Privacy Control (when the site honours it),
  // not after consent(false), and not before consent(true) when the site requires consent.
  function gpc() {
    return options.honorGpc !== false && nav.globalPrivacyControl === true;
  }
  function identified() {
    if (gpc()) return false;
    if (consent === false) return false;
    return consent === true || !options.requireConsent;
  }
  function state() {
    return identified() ? load(STORE) || {} : memory || (memory = {});
  }
  function keep(st) {
    if (identified()) save(STORE, st);
    else memory = st;
  }
  function persistQueue() {
    if (identified()) save(QUEUE, queue);
  }

  function campaignOf(href) {
    var params;
    try {
      params = new URL(href).searchParams;
    } catch (e) {
      return '';
    }
    var parts = [];
    for (var i = 0; i < CAMPAIGN.length; i++) {
      var v = params.get(CAMPAIGN[i]);
      if (v) parts.push(CAMPAIGN[i] + '=' + v);
    }
    return parts.join('&');
  }
  function external(ref) {
    try {
      return !!ref && new URL(ref).hostname !== win.location.hostname;
    } catch (e) {
      return false;
    }
  }

  function touch(href) {
    return {
      type: 'touch',
      event_id: id(),
      timestamp: new Date().toISOString(),
      url: href,
      referrer: doc.referrer || undefined,
      webdriver: nav.webdriver === true || undefined,
    };
  }

  // A page view: a touch when it starts a visit (first page, 30 minutes idle, a new campaign).
  // Without an identifier there is no visit to extend: a touch is sent for a landing only (a
  // campaign link, or arriving from another site), so browsing the site sends nothing.
  function page() {
    if (!key) return;
    var href = win.location.href;
    var campaign = campaignOf(href);
    var t = now();
    if (!identified()) {
      var landing = campaign || external(doc.referrer);
      // Consent awaited: the landing touch waits for the answer (with identifiers after
      // consent(true), without after consent(false) or when the page goes), so it is sent once.
      if (consent === null && options.requireConsent && !gpc()) {
        if (landing && !held) held = touch(href);
      } else if (landing) enqueue(touch(href));
      return;
    }
    var st = state();
    if (!st.a) st.a = id();
    if (!st.s || t - (st.t || 0) > IDLE_MS || (campaign && campaign !== st.c)) {
      st.s = id();
      st.c = campaign;
      st.t = t;
      keep(st);
      enqueue(touch(href));
    } else {
      st.t = t;
      keep(st);
    }
  }

  function enqueue(event) {
    if (identified()) {
      var st = state();
      if (event.type === 'touch') {
        event.anonymous_id = st.a;
        event.session_id = st.s;
      }
    }
    queue.push(event);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    persistQueue();
    flush();
  }

  function body(events) {
    return JSON.stringify({ sent_at: new Date().toISOString(), consent: identified(), events: events });
  }

  function fresh() {
    var limit = now() - MAX_AGE_MS + 60000;
    queue = queue.filter(function (e) {
      return Date.parse(e.timestamp) > limit;
    });
  }

  // Sends the queue, BATCH events at a time. Delivered or refused (4xx but 429): dropped from
  // the queue. Offline, 429 or 5xx: kept, retried with backoff (1 s doubling to 1 min) and when
  // the browser comes back online.
  function flush() {
    if (!endpoint || sending || queue.length === 0) return;
    fresh();
    if (queue.length === 0) return persistQueue();
    var batch = queue.slice(0, BATCH);
    sending = true;
    var done = function (ok) {
      sending = false;
      if (ok) {
        var ids = {};
        for (var i = 0; i < batch.length; i++) ids[batch[i].event_id] = 1;
        queue = queue.filter(function (e) {
          return !ids[e.event_id];
        });
        persistQueue();
        delay = 1000;
        if (queue.length) flush();
      } else retry();
    };
    try {
      win
        .fetch(endpoint, { method: 'POST', body: body(batch), headers: { 'Content-Type': 'text/plain' }, keepalive: true, credentials: 'omit', mode: 'cors' })
        .then(function (res) {
          done(res.ok || (res.status >= 400 && res.status < 500 && res.status !== 429));
        }, function () {
          done(false);
        });
    } catch (e) {
      done(false);
    }
  }
  function retry() {
    if (timer) return;
    timer = win.setTimeout(function () {
      timer = null;
      flush();
    }, delay);
    delay = Math.min(delay * 2, 60000);
  }
  // The page is going away: what is still queued goes by beacon (a resend later is stored once).
  function beacon() {
    if (held) release();
    if (!endpoint || queue.length === 0 || !nav.sendBeacon) return;
    fresh();
    for (var i = 0; i < queue.length; i += BATCH) {
      try {
        nav.sendBeacon(endpoint, body(queue.slice(i, i + BATCH)));
      } catch (e) {}
    }
  }
  function release() {
    var ev = held;
    held = null;
    if (ev) enqueue(ev);
  }

  var api = {
    init: function (publishableKey, opts) {
      if (key || typeof publishableKey !== 'string') return;
      key = publishableKey;
      options = opts || {};
      var base = options.endpoint || scriptUrl || win.location.href;
      endpoint = new URL('/api/v1/collect', base).href + '?key=' + encodeURIComponent(key);
      // A consent given on an earlier visit was stored with the state (reading stores nothing).
      if (options.requireConsent && (load(STORE) || {}).g) consent = true;
      if (identified()) queue = load(QUEUE) || [];
      win.addEventListener('online', flush);
      win.addEventListener('pagehide', beacon);
      page();
      flush();
    },
    page: page,
    identify: function (userId) {
      if (!key || typeof userId !== 'string' || !userId || !identified()) return;
      var st = state();
      if (st.u === userId) return;
      if (!st.a) st.a = id();
      st.u = userId;
      keep(st);
      enqueue({ type: 'identify', event_id: id(), timestamp: new Date().toISOString(), anonymous_id: st.a, user_id: userId });
    },
    consent: function (granted) {
      if (granted === true) {
        consent = true;
        if (identified()) {
          var st = state();
          st.g = 1;
          keep(st);
          held = null;
          persistQueue();
          page(); // starts the visit, this page its landing
        }
      } else if (granted === false) {
        consent = false;
        erase();
        memory = null;
        for (var i = 0; i < queue.length; i++) {
          delete queue[i].anonymous_id;
          delete queue[i].session_id;
        }
        queue = queue.filter(function (e) {
          return e.type === 'touch';
        });
        release();
      }
    },
    // A new browser identity (after a logout): new anonymous id and visit, no user.
    reset: function () {
      keep({ g: state().g });
    },
    anonymousId: function () {
      return identified() ? state().a || null : null;
    },
    flush: flush,
  };
  function skeldir(command) {
    var fn = api[command];
    if (typeof fn === 'function') return fn.apply(null, Array.prototype.slice.call(arguments, 1));
  }
  skeldir.version = 1;
  return skeldir;
}
