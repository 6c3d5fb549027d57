// The Settings page: the OBS password and the relay's tunnel secret go into the secret store
// (PUT /api/obs/password, PUT /api/relay/secret); the connection states follow their events.
'use strict';

(() => {
  const S = window.Stagehand;
  const { $ } = S;

  function secretForm(formId, inputId, path, field, progress, done) {
    const form = $(formId);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $(inputId);
      S.busy(form.querySelector('button[type="submit"]'), progress, async () => {
        await S.api('PUT', path, { [field]: input.value });
        input.value = '';
        S.say(done);
      });
    });
  }

  secretForm('obs-password', 'obs-password-input', '/api/obs/password', 'password',
    'Saving the OBS password…', 'OBS password saved; Stagehand is reconnecting to OBS.');
  secretForm('relay-secret', 'relay-secret-input', '/api/relay/secret', 'secret',
    'Saving the tunnel secret…', 'Tunnel secret saved; the relay link uses it now.');

  S.events((event) => {
    if (event.type === 'obs.status') S.refresh(['obs']);
    if (event.type === 'relay.status') S.refresh(['relay']);
  });
})();
