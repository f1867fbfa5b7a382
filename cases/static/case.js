// The case page without surprises: show only the questions that apply (progressive enhancement;
// every form works without this script, the server ignores the answers that do not apply).
(function () {
  "use strict";

  function follow(selectId, wanted, fieldIds) {
    var select = document.getElementById(selectId);
    if (!select) return;
    function apply() {
      var show = select.value === wanted;
      fieldIds.forEach(function (id) {
        var input = document.getElementById(id);
        var box = input && input.closest(".field");
        if (box) box.hidden = !show;
      });
    }
    select.addEventListener("change", apply);
    apply();
  }

  follow("followup-child_found", "yes", ["followup-in_hazardous_work", "followup-in_school_or_training"]);
  follow("service-implemented", "yes", ["service-implemented_on"]);
})();
