// PM2 process file: one app per role of the single native `aisales` binary, in fork mode.
//
//   aisales migrate && pm2 start ecosystem.config.cjs && pm2 save
//
// `.env` next to this file is merged into every app's environment. Unlike the old loader, quotes
// around values are removed and `export KEY=...` lines are understood. Logs go to ../logs/.

const fs = require('fs');
const path = require('path');

function loadEnv(file) {
  const env = {};
  if (!fs.existsSync(file)) return env;
  for (const raw of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trim();
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    const quoted = value.length >= 2 && (value[0] === '"' || value[0] === "'") && value[value.length - 1] === value[0];
    if (quoted) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, '');
    env[key] = value;
  }
  return env;
}

const dotenv = loadEnv(path.join(__dirname, '.env'));
// PM2 runs the production roles: refuse an environment that says otherwise (a copied .env.example
// says development, which drops the GREEN-API host allow-list and Secure cookies).
const appEnv = dotenv.APP_ENV || dotenv.NODE_ENV || process.env.APP_ENV || process.env.NODE_ENV || 'production';
if (!['production', 'staging'].includes(appEnv)) {
  throw new Error(`ecosystem.config.cjs runs production roles, but APP_ENV is "${appEnv}"; set APP_ENV=production (or staging) in .env`);
}
const bin = process.env.AISALES_BIN
  || [path.join(__dirname, 'bin', 'aisales'), path.join(__dirname, 'target', 'release', 'aisales')].find((p) => fs.existsSync(p))
  || path.join(__dirname, 'target', 'release', 'aisales');

// Common settings of every app: native binary, fork mode, restart with backoff, and enough time
// on stop for the graceful shutdown (SHUTDOWN_GRACE_SECS, default 20 s).
function app(name, args, extra = {}) {
  return {
    name,
    script: bin,
    args,
    cwd: __dirname,
    interpreter: 'none',
    exec_mode: 'fork',
    instances: 1,
    autorestart: true,
    max_restarts: 20,
    min_uptime: '10s',
    exp_backoff_restart_delay: 200,
    kill_timeout: 30000,
    time: true,
    error_file: `../logs/${name}-error.log`,
    out_file: `../logs/${name}-out.log`,
    merge_logs: true,
    ...extra,
    env: { APP_ENV: 'production', LOG_FORMAT: 'json', ...dotenv, ...(extra.env || {}) },
  };
}

// ChromeDriver for the vehicle-lookup worker (WEBDRIVER_URL, default http://127.0.0.1:9515). It
// starts headless Chromium per browser session; the worker reuses sessions and kills browsers a
// crashed ChromeDriver leaves behind.
const chromedriver = process.env.CHROMEDRIVER_BIN
  || ['/usr/bin/chromedriver', '/run/current-system/sw/bin/chromedriver'].find((p) => fs.existsSync(p))
  || 'chromedriver';

module.exports = {
  apps: [
    app('aisales', 'serve', { max_memory_restart: '1G', env: { PORT: dotenv.PORT || '5000' } }),
    // Projectors, the dispatcher (work projector) and the sweeper. Several copies may run on several
    // hosts: each projector is owned by one process at a time.
    app('aisales-projector', 'projector', { max_memory_restart: '512M', env: { METRICS_PORT: '9101' } }),
    // One app per worker kind; each joins its stream's consumer group.
    app('aisales-worker-message-send', 'worker message-send', { max_memory_restart: '512M', env: { METRICS_PORT: '9102' } }),
    app('aisales-worker-reply-suggestion', 'worker reply-suggestion', { max_memory_restart: '512M', env: { METRICS_PORT: '9103' } }),
    app('aisales-worker-probe', 'worker probe', { max_memory_restart: '256M', env: { METRICS_PORT: '9104' } }),
    app('aisales-worker-vehicle-lookup', 'worker vehicle-lookup', { max_memory_restart: '512M', env: { METRICS_PORT: '9105' } }),
    // Leads: first messages (at the opening outside working hours), no-reply checks, the team's bot.
    app('aisales-worker-leads', 'worker leads', { max_memory_restart: '256M', env: { METRICS_PORT: '9108' } }),
    // Customers' files: downloads, content-addressed storage (MEDIA_STORE), thumbnails, photo reading.
    app('aisales-worker-media', 'worker media', { max_memory_restart: '512M', env: { METRICS_PORT: '9109' } }),
    {
      name: 'chromedriver',
      script: chromedriver,
      args: '--port=9515 --allowed-ips=127.0.0.1',
      cwd: __dirname,
      interpreter: 'none',
      exec_mode: 'fork',
      instances: 1,
      autorestart: true,
      max_restarts: 50,
      min_uptime: '5s',
      exp_backoff_restart_delay: 200,
      kill_timeout: 5000,
      time: true,
      error_file: '../logs/chromedriver-error.log',
      out_file: '../logs/chromedriver-out.log',
      merge_logs: true,
      max_memory_restart: '1G',
    },
    // Price lookups: the tenant's price list, Yandex search and listing pages over HTTP, AI estimates.
    app('aisales-worker-price-lookup', 'worker price-lookup', { max_memory_restart: '256M', env: { METRICS_PORT: '9106' } }),
  ],
};
