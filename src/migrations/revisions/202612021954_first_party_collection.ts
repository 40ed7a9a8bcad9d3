import type { Revision } from '../revision.js';

/**
 * First-party collection (issue 14): publishable keys for browsers, the anonymous id of tracker
 * events, and the identity graph that links anonymous ids to people.
 *
 * - publishable_keys: a tenant's browser keys (`pk_…`), as many as it likes, each with its
 *   allowed origins and its privacy settings. Only the SHA-256 of a key is stored, as for secret
 *   keys. A key names its tenant (src/collect/keys.ts), so it is looked up inside that tenant's
 *   context: unique per (tenant_id, key_hash), no cross-tenant lookup, no SECURITY DEFINER
 *   function. Revoked keys are kept (revoked_at) as the record of what was published.
 * - collect_daily_counts: per key and UTC day, what POST /api/v1/collect did: touches and
 *   identifies stored, bot hits filtered (counted, never stored), events stored without an
 *   identifier (no consent, Global Privacy Control).
 * - attribution_events.anonymous_id: the tracker's first-party id of a browser (opaque text, as
 *   sent), NULL for events that carry none; journeys follow it through the identity graph
 *   (idx_attribution_events_anonymous_journey, partial: server-side events rarely carry one).
 * - identity_links: the identity graph, one row per (anonymous id, user id) edge, tenant-scoped;
 *   a person's journey is the touches of every anonymous id linked to their user id.
 * - identity_changes: the audit trail of links and unlinks (who, when, through what) and the
 *   queue of conversions to re-attribute: a change is recomputed exactly once (recomputed_at
 *   set in the transaction that rewrites the affected allocations).
 * The identity tables hold only tenant_id, user id and anonymous id columns besides
 * bookkeeping, so erasing a person is one DELETE per table by user id and anonymous id.
 */
export const revision: Revision = {
  id: '202612021954',
  previous: '202612021950',
  title: 'first-party collection: publishable keys, anonymous ids, identity graph',
  dropsOnDowngrade: [
    { table: 'identity_changes' },
    { table: 'identity_links' },
    { table: 'collect_daily_counts' },
    { table: 'publishable_keys' },
    { table: 'attribution_events', columns: ['anonymous_id'] },
  ],

  async up(m) {
    await m.transaction(async () => {
      await m.exec(`
        CREATE TABLE IF NOT EXISTS publishable_keys (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          key_hash varchar(64) NOT NULL,
          key_hint varchar(8) NOT NULL,
          name varchar(255) NOT NULL,
          allowed_origins text[] NOT NULL,
          require_consent boolean NOT NULL DEFAULT false,
          honor_gpc boolean NOT NULL DEFAULT true,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          revoked_at timestamptz,
          CONSTRAINT pk_publishable_keys PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_publishable_keys_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT ck_publishable_keys_key_hash CHECK (key_hash ~ '^[0-9a-f]{64}$'),
          CONSTRAINT ck_publishable_keys_name CHECK (btrim(name) <> ''),
          CONSTRAINT ck_publishable_keys_allowed_origins CHECK (cardinality(allowed_origins) BETWEEN 1 AND 50)
        )`);
      await m.exec(`CREATE UNIQUE INDEX IF NOT EXISTS idx_publishable_keys_key_hash ON publishable_keys (tenant_id, key_hash)`);
      await m.exec(`DROP TRIGGER IF EXISTS trg_publishable_keys_updated_at ON publishable_keys`);
      await m.exec(`CREATE TRIGGER trg_publishable_keys_updated_at BEFORE UPDATE ON publishable_keys
        FOR EACH ROW EXECUTE FUNCTION skeldir_touch_updated_at()`);
      await m.tenantPolicy('publishable_keys');
      // No DELETE: a key is revoked, and its row stays as the record of what was published.
      await m.grantApp('publishable_keys', 'SELECT, INSERT, UPDATE');
      await m.comment('publishable_keys', 'Publishable (browser) keys of a tenant: they only send touches and identifies to POST /api/v1/collect, from their allowed origins.', {
        tenant_id: 'Owning tenant (also encoded in the key itself); row-level security shows the row only in its context.',
        id: 'Key identifier (UUID v4, generated); names the key in the API, the CLI and the counts.',
        key_hash: 'Lower-case hex SHA-256 of the key (the key itself is shown once and never stored). INVARIANT: auth_critical',
        key_hint: 'The last four characters of the key, to tell keys apart in listings.',
        name: 'Human-readable label (the site or app the key is for).',
        allowed_origins: 'Origins (scheme://host[:port], or scheme://*.domain for its subdomains) browsers may send from; anything else is refused, preflight included. INVARIANT: auth_critical',
        require_consent: 'True: the tracker stores nothing and sends no identifier until the visitor consents, and the server drops identifiers of events sent without consent.',
        honor_gpc: 'True: a visitor whose browser sends Global Privacy Control is treated as not consenting (tracker and server).',
        created_at: 'When the key was issued.',
        updated_at: 'When the row last changed (maintained by trigger).',
        revoked_at: 'When the key was revoked (it authenticates nothing from then on); NULL while it is in use. INVARIANT: auth_critical',
      });
      await m.exec(`COMMENT ON INDEX idx_publishable_keys_key_hash IS 'Lookup of a presented key by its hash, within the tenant the key names.'`);

      await m.exec(`
        CREATE TABLE IF NOT EXISTS collect_daily_counts (
          tenant_id uuid NOT NULL,
          key_id uuid NOT NULL,
          day date NOT NULL,
          touches bigint NOT NULL DEFAULT 0,
          identifies bigint NOT NULL DEFAULT 0,
          bots bigint NOT NULL DEFAULT 0,
          anonymous bigint NOT NULL DEFAULT 0,
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_collect_daily_counts PRIMARY KEY (tenant_id, key_id, day),
          CONSTRAINT fk_collect_daily_counts_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_collect_daily_counts_key_id FOREIGN KEY (tenant_id, key_id) REFERENCES publishable_keys (tenant_id, id) ON DELETE CASCADE,
          CONSTRAINT ck_collect_daily_counts_non_negative CHECK (touches >= 0 AND identifies >= 0 AND bots >= 0 AND anonymous >= 0)
        )`);
      await m.tenantPolicy('collect_daily_counts');
      await m.grantApp('collect_daily_counts', 'SELECT, INSERT, UPDATE');
      await m.comment('collect_daily_counts', 'What POST /api/v1/collect did per publishable key and UTC day (bot traffic is counted here and nowhere else).', {
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        key_id: 'The publishable key the requests came with.',
        day: 'UTC day of the requests.',
        touches: 'Touches (landing page views) stored as touchpoint events.',
        identifies: 'Identify calls received (new links and links already known).',
        bots: 'Events dropped as bot or crawler traffic (user-agent patterns, headless and automation signals); never stored.',
        anonymous: 'Touches stored without an identifier (no consent, or Global Privacy Control honoured).',
        updated_at: 'When the counts last changed.',
      });

      await m.exec(`
        CREATE TABLE IF NOT EXISTS identity_links (
          tenant_id uuid NOT NULL,
          anonymous_id varchar(255) NOT NULL,
          user_id varchar(255) NOT NULL,
          source varchar(20) NOT NULL,
          publishable_key_id uuid,
          linked_at timestamptz NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_identity_links PRIMARY KEY (tenant_id, anonymous_id, user_id),
          CONSTRAINT fk_identity_links_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_identity_links_publishable_key_id FOREIGN KEY (tenant_id, publishable_key_id) REFERENCES publishable_keys (tenant_id, id),
          CONSTRAINT ck_identity_links_source CHECK (source IN ('collect', 'api', 'cli'))
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_identity_links_user ON identity_links (tenant_id, user_id)`);
      await m.tenantPolicy('identity_links');
      await m.grantApp('identity_links', 'SELECT, INSERT, DELETE');
      await m.comment('identity_links', "The identity graph: an edge links a browser's anonymous id to a person's user id (identify). A conversion of the person is credited to the touches of every anonymous id linked to them.", {
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        anonymous_id: 'The tracker\'s first-party anonymous id (attribution_events.anonymous_id). INVARIANT: analytics_critical',
        user_id: "The tenant's id of the person (attribution_events.user_id). INVARIANT: analytics_critical",
        source: 'Where the link came from: collect (the tracker, with a publishable key), api (POST /api/v1/identify, secret key) or cli.',
        publishable_key_id: 'The publishable key of a link made by the tracker; NULL otherwise.',
        linked_at: 'When the identify happened (the event time of the identify that made the link).',
        created_at: 'When the row was created.',
      });
      await m.exec(`COMMENT ON INDEX idx_identity_links_user IS 'The anonymous ids linked to a person (journeys, re-attribution).'`);

      await m.exec(`
        CREATE TABLE IF NOT EXISTS identity_changes (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL DEFAULT gen_random_uuid(),
          action varchar(10) NOT NULL,
          anonymous_id varchar(255) NOT NULL,
          user_id varchar(255) NOT NULL,
          source varchar(20) NOT NULL,
          publishable_key_id uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          recomputed_at timestamptz,
          conversions_recomputed integer,
          CONSTRAINT pk_identity_changes PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_identity_changes_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
          CONSTRAINT fk_identity_changes_publishable_key_id FOREIGN KEY (tenant_id, publishable_key_id) REFERENCES publishable_keys (tenant_id, id),
          CONSTRAINT ck_identity_changes_action CHECK (action IN ('link', 'unlink')),
          CONSTRAINT ck_identity_changes_source CHECK (source IN ('collect', 'api', 'cli')),
          CONSTRAINT ck_identity_changes_recomputed CHECK ((recomputed_at IS NULL) = (conversions_recomputed IS NULL) AND (conversions_recomputed IS NULL OR conversions_recomputed >= 0))
        )`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_identity_changes_pending ON identity_changes (tenant_id, created_at) WHERE recomputed_at IS NULL`);
      await m.exec(`CREATE INDEX IF NOT EXISTS idx_identity_changes_user ON identity_changes (tenant_id, user_id, created_at)`);
      await m.tenantPolicy('identity_changes');
      // No DELETE: the audit trail is kept.
      await m.grantApp('identity_changes', 'SELECT, INSERT, UPDATE');
      await m.comment('identity_changes', 'Audit trail of the identity graph (every link and unlink) and the queue of its re-attributions: the conversions a change affects are recomputed once, in the transaction that sets recomputed_at.', {
        tenant_id: 'Owning tenant; row-level security shows the row only in its context.',
        id: 'Change identifier (UUID v4, generated).',
        action: 'link or unlink.',
        anonymous_id: 'The anonymous id of the edge.',
        user_id: 'The user id of the edge.',
        source: 'Where the change came from: collect, api or cli.',
        publishable_key_id: 'The publishable key of a change made by the tracker; NULL otherwise.',
        created_at: 'When the change was made.',
        recomputed_at: 'When the conversions it affects were re-attributed; NULL while that is still to do. INVARIANT: analytics_critical',
        conversions_recomputed: 'How many conversions the re-attribution recomputed; NULL until then.',
      });
      await m.exec(`COMMENT ON INDEX idx_identity_changes_pending IS 'Changes whose re-attribution is still to do, oldest first.'`);
      await m.exec(`COMMENT ON INDEX idx_identity_changes_user IS 'The history of a person''s links.'`);
    });

    await m.ddl(`ALTER TABLE attribution_events ADD COLUMN IF NOT EXISTS anonymous_id varchar(255)`);
    await m.comment('attribution_events', null, {
      anonymous_id: "The first-party anonymous id of the browser behind the event (the tracker's, or one a server passes on); journeys follow it through identity_links. NULL when none.",
    });
    await m.createIndex(
      'idx_attribution_events_anonymous_journey',
      'attribution_events (tenant_id, anonymous_id, event_timestamp) WHERE anonymous_id IS NOT NULL',
    );
    await m.exec(`COMMENT ON INDEX idx_attribution_events_anonymous_journey IS 'Journey lookup across sessions of one browser: the events of an anonymous id in time order.'`);
  },

  async down(m) {
    await m.dropIndex('idx_attribution_events_anonymous_journey');
    await m.ddl(`ALTER TABLE attribution_events DROP COLUMN IF EXISTS anonymous_id`);
    await m.transaction(async () => {
      await m.exec('DROP TABLE IF EXISTS identity_changes');
      await m.exec('DROP TABLE IF EXISTS identity_links');
      await m.exec('DROP TABLE IF EXISTS collect_daily_counts');
      await m.exec('DROP TABLE IF EXISTS publishable_keys');
    });
  },
};
