// Atelier Studio: the Autopilot pages (registered into window.AtelierStudio.pages).
(function () {
  'use strict';
})();
