// Atelier Studio: model registry and endpoint pages (registered into window.AtelierStudio.pages).
(function () {
  'use strict';
})();
