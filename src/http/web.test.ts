import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../config.js';
import { databaseAt } from '../db/database.js';
import { buildApp, type App } from './app.js';
import { CSP } from './web.js';

const roles = { owner: 'skeldir_owner', app: 'skeldir_app', system: 'skeldir_system', ownerSetRole: undefined };
const db = databaseAt('postgres://unused@127.0.0.1:1/unused', roles);
let app: App;
let empty: App;
let root: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'skeldir-web-'));
  mkdirSync(join(root, 'assets'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>app</title>');
  writeFileSync(join(root, 'assets', 'main-ABC.js'), 'console.log(1)');
  app = await buildApp({ db, config: loadConfig({}), logger: false, webRoot: root });
  empty = await buildApp({ db, config: loadConfig({}), logger: false, webRoot: join(root, 'missing') });
});
after(async () => {
  await app.close();
  await empty.close();
});

const page = (a: App, url: string) => a.inject({ method: 'GET', url, headers: { accept: 'text/html,application/xhtml+xml' } });

test('pages of the app get index.html with a strict CSP and no caching; assets are immutable', async () => {
  for (const url of ['/', '/channels', '/dead-events?open=x', '/invite']) {
    const res = await page(app, url);
    assert.equal(res.statusCode, 200, url);
    assert.match(res.headers['content-type'] as string, /^text\/html/);
    assert.equal(res.body, '<!doctype html><title>app</title>');
    assert.equal(res.headers['content-security-policy'], CSP);
    assert.match(CSP, /script-src 'self';/);
    assert.match(CSP, /frame-ancestors 'none'/);
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  }
  const asset = await app.inject({ method: 'GET', url: '/assets/main-ABC.js' });
  assert.equal(asset.statusCode, 200);
  assert.match(asset.headers['cache-control'] as string, /immutable/);
});

test('API paths and non-browser requests still get problems, never the page', async () => {
  for (const url of ['/api/v1/nope', '/api/v1/tenant', '/problems/nope', '/health/x']) {
    const res = await page(app, url);
    assert.notEqual(res.headers['content-type'], 'text/html; charset=utf-8', url);
  }
  const plain = await app.inject({ method: 'GET', url: '/nope' });
  assert.equal(plain.statusCode, 404);
  assert.equal(plain.json().code, 'route_not_found');
  assert.equal((await app.inject({ method: 'GET', url: '/assets/missing.js', headers: { accept: 'text/html' } })).statusCode, 404);
});

test('without a build, a page says how to build it', async () => {
  const res = await page(empty, '/');
  assert.equal(res.statusCode, 503);
  assert.match(res.body, /npm run build/);
});

test('a rebuild under a running server breaks nothing: it keeps serving the build it started with', async () => {
  const before = await app.inject({ method: 'GET', url: '/assets/main-ABC.js' });
  assert.equal(before.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.ok(before.headers.etag);
  assert.equal((await app.inject({ method: 'GET', url: '/assets/main-ABC.js', headers: { 'if-none-match': before.headers.etag as string } })).statusCode, 304);
  // npm run build empties dist/web, then writes files with new names.
  rmSync(root, { recursive: true, force: true });
  const res = await page(app, '/channels');
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, '<!doctype html><title>app</title>');
  const asset = await app.inject({ method: 'GET', url: '/assets/main-ABC.js' });
  assert.equal(asset.statusCode, 200);
  assert.equal(asset.body, 'console.log(1)');
  mkdirSync(join(root, 'assets'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>new build</title>');
  writeFileSync(join(root, 'assets', 'main-DEF.js'), 'console.log(2)');
  assert.equal((await page(app, '/')).body, '<!doctype html><title>app</title>', 'no mix of two builds');
  assert.equal((await app.inject({ method: 'GET', url: '/assets/main-DEF.js' })).statusCode, 404);
  assert.equal((await app.inject({ method: 'GET', url: '/assets/main-ABC.js' })).body, 'console.log(1)');
  // A server started after the rebuild serves the new one.
  const restarted = await buildApp({ db, config: loadConfig({}), logger: false, webRoot: root });
  try {
    assert.equal((await page(restarted, '/')).body, '<!doctype html><title>new build</title>');
    assert.equal((await restarted.inject({ method: 'GET', url: '/assets/main-DEF.js' })).body, 'console.log(2)');
  } finally {
    await restarted.close();
  }
});
