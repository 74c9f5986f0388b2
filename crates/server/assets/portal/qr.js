/* "Scansiona il QR code" on the portal's "Paga un avviso" form: where the
   browser has BarcodeDetector (with QR codes) and a camera, the button
   appears; the QR code of a pagoPA notice, PAGOPA|002|{nav}|{fc}|{amount},
   fills in the notice code and the creditor. Elsewhere nothing shows and
   the code is typed: the form works the same without this script. */
(function () {
  'use strict';
  var script = document.currentScript;
  var box = document.getElementById('qr');
  var start = document.getElementById('qr-avvia');
  var video = document.getElementById('qr-video');
  var status = document.getElementById('qr-stato');
  var field = document.getElementById('codice');
  if (!box || !start || !video || !field || !script) return;
  if (!('BarcodeDetector' in window) || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia) return;
  var say = function (key) { status.textContent = script.getAttribute('data-' + key) || ''; };

  /* The notice's QR code: "PAGOPA|002|" + 18-digit notice number + "|" +
     11-digit creditor fiscal code + "|" + amount in cents. */
  var read = function (text) {
    var m = /^PAGOPA\|002\|(\d{18})\|(\d{11})\|(\d+)$/.exec((text || '').trim());
    return m ? { nav: m[1], fc: m[2] } : null;
  };

  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    if (formats.indexOf('qr_code') < 0) return;
    var detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    var stream = null;
    var stop = function () {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
      video.hidden = true;
    };
    var scan = function () {
      if (!stream) return;
      detector.detect(video).then(function (codes) {
        for (var i = 0; i < codes.length; i++) {
          var found = read(codes[i].rawValue);
          if (found) {
            stop();
            field.value = found.nav;
            var ente = document.getElementById('ente');
            if (ente && ente.tagName === 'SELECT') {
              for (var j = 0; j < ente.options.length; j++) {
                if (ente.options[j].value === found.fc) ente.selectedIndex = j;
              }
            }
            say('found');
            field.focus();
            return;
          }
        }
        window.setTimeout(scan, 250);
      }, function () { window.setTimeout(scan, 500); });
    };
    start.addEventListener('click', function () {
      if (stream) { stop(); return; }
      navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false })
        .then(function (s) {
          stream = s;
          video.srcObject = s;
          video.style.maxWidth = '100%';
          video.hidden = false;
          say('looking');
          return video.play();
        })
        .then(scan)
        .catch(function () { stop(); say('denied'); });
    });
    box.hidden = false;
  }, function () { /* no detector: the field is typed */ });
})();
