import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * A real headless Chromium for tests, driven by playwright-core (no browser download at run
 * time). Which binary, in order:
 *   1. `CHROMIUM_PATH`, when set (it must exist);
 *   2. a system Chromium: /usr/bin/chromium (Debian's `chromium`), /usr/bin/chromium-browser;
 *   3. the headless shell the npm package `@sparticuz/chromium` ships brotli-compressed, unpacked
 *      once per version into the OS temporary folder (~2.5 s the first time, then reused).
 * So `npm test` on a fresh machine with Node and npm only runs the browser tests too.
 */

/** Flags headless Chromium needs on a CI box with no display, GPU, network or setuid sandbox. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

const SYSTEM_CHROMIUMS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export interface ResolvedChromium {
  path: string;
  source: 'CHROMIUM_PATH' | 'system' | '@sparticuz/chromium';
}

/** Finds the Chromium to drive (see the module comment for the order). */
export async function resolveChromium(env: NodeJS.ProcessEnv = process.env): Promise<ResolvedChromium> {
  const given = env.CHROMIUM_PATH;
  if (given) {
    if (!existsSync(given)) throw new Error(`CHROMIUM_PATH=${given} does not exist`);
    return { path: given, source: 'CHROMIUM_PATH' };
  }
  for (const path of SYSTEM_CHROMIUMS) if (existsSync(path)) return { path, source: 'system' };
  return { path: await unpackSparticuz(), source: '@sparticuz/chromium' };
}

/**
 * Unpacks @sparticuz/chromium's binary (and its fonts and SwiftShader) into a folder of our own,
 * `<tmp>/skeldir-chromium-<version>`. The package's own `executablePath()` returns
 * `<tmp>/chromium` as soon as that file exists, even while another process is still writing it
 * (test files run in parallel), so we unpack into a private staging folder and rename it into
 * place: a folder that exists is complete.
 */
export async function unpackSparticuz(): Promise<string> {
  const require = createRequire(import.meta.url);
  // The package's exports hide package.json: find it from the entry point (build/index.js).
  const pkgJson = join(dirname(require.resolve('@sparticuz/chromium')), '..', 'package.json');
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
  const bin = join(dirname(pkgJson), 'bin');
  const target = join(tmpdir(), `skeldir-chromium-${version}`);
  const executable = join(target, 'chromium');
  if (existsSync(executable)) return executable;

  const { inflate } = await import('@sparticuz/chromium');
  const staging = mkdtempSync(join(tmpdir(), `skeldir-chromium-${version}-staging-`));
  // inflate() writes to os.tmpdir(), which reads TMPDIR at each call: point it at the staging
  // folder for the synchronous start of each call (where the output path is computed).
  const saved = process.env.TMPDIR;
  let pending: Promise<string>[];
  try {
    process.env.TMPDIR = staging;
    pending = ['chromium.br', 'fonts.tar.br', 'swiftshader.tar.br'].map((f) => inflate(join(bin, f)));
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  try {
    await Promise.all(pending);
    writeFileSync(join(staging, 'fonts.conf'), fontsConf(target));
    renameSync(staging, target);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    // Another process renamed its complete copy into place first: use that one.
    if (existsSync(executable) && statSync(executable).size > 0) return executable;
    throw error;
  }
  return executable;
}

/** A fontconfig file for the fonts the package ships (used only when the system has no fonts). */
function fontsConf(target: string): string {
  return `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>${target}/fonts</dir><dir>/usr/share/fonts</dir><cachedir>${target}/fontcache</cachedir></fontconfig>\n`;
}

export interface TestBrowser {
  browser: Browser;
  chromium: ResolvedChromium;
  /** A fresh context (its own cookies and storage), desktop 1280×800 unless told otherwise. */
  newContext(options?: { width?: number; height?: number; baseURL?: string }): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Launches headless Chromium. Playwright gives each launch a fresh temporary `--user-data-dir`
 * and removes it on close; contexts are isolated from each other (separate cookie jars), which
 * the isolation tests rely on to play two users at once.
 */
export async function launchBrowser(options: { chromium?: ResolvedChromium; /** Flags added to CHROMIUM_FLAGS (e.g. --user-agent=…, which also covers requests a page makes as it unloads). */ args?: string[] } = {}): Promise<TestBrowser> {
  const resolved = options.chromium ?? (await resolveChromium());
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const fonts = join(dirname(resolved.path), 'fonts.conf');
  if (resolved.source === '@sparticuz/chromium' && existsSync(fonts) && !existsSync('/etc/fonts/fonts.conf')) env.FONTCONFIG_FILE = fonts;
  const browser = await chromium.launch({
    executablePath: resolved.path,
    headless: true,
    chromiumSandbox: false,
    args: [...CHROMIUM_FLAGS, ...(options.args ?? [])],
    env,
    timeout: 60_000,
  });
  return {
    browser,
    chromium: resolved,
    newContext: (options = {}) =>
      browser.newContext({
        viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
        baseURL: options.baseURL,
        reducedMotion: 'reduce',
      }),
    close: () => browser.close(),
  };
}

/** Phone viewport used for the small-screen screenshots and checks (an iPhone 12/13/14: 390×844). */
export const PHONE = { width: 390, height: 844 } as const;

/** Where screenshots and other artifacts of browser tests go (git-ignored). */
export const TEST_RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-results');

/** Saves a full-page screenshot as `test-results/<name>.png` and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(TEST_RESULTS, { recursive: true });
  const path = join(TEST_RESULTS, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface AxeViolation {
  id: string;
  impact: 'minor' | 'moderate' | 'serious' | 'critical' | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/**
 * Runs axe-core (the accessibility engine behind Lighthouse and axe DevTools) in the page and
 * returns its violations of WCAG 2.x A/AA rules, in full so a failing test can say what and where.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const require = createRequire(import.meta.url);
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated over the DevTools protocol, not added as a <script>: the app's Content-Security-Policy
  // (no inline script) stays on, as users get it.
  await page.evaluate(source);
  const options = { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } };
  // A string expression: the page's globals (axe, document) are not in this file's types.
  return page.evaluate<AxeViolation[]>(
    `axe.run(document, ${JSON.stringify(options)}).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) })))`,
  );
}

/** Serious and critical violations, one line each (empty when there are none). */
export function seriousViolations(violations: AxeViolation[]): string[] {
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`);
}
