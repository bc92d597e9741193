// Drag and drop with a preview list on top of a plain <input type=file multiple>: without this
// script the form still works; with it, files can be dropped and are checked before sending.
(function () {
  "use strict";
  var zone = document.getElementById("drop-zone");
  var form = document.getElementById("upload-form");
  if (!zone || !form) { return; }
  var input = zone.querySelector("input[type=file]");
  var list = document.getElementById("preview-list");
  var errors = document.getElementById("client-errors");
  var submit = document.getElementById("upload-submit");
  var maxBytes = parseInt(zone.getAttribute("data-max-bytes"), 10) || 0;
  // Videos have their own limits; the server tells them apart by content, this by type/name.
  var videoMaxBytes = parseInt(zone.getAttribute("data-video-max-bytes"), 10) || 0;
  var videoMaxSeconds = parseFloat(zone.getAttribute("data-video-max-seconds")) || 0;
  var videoExtensions = [".mp4", ".m4v", ".webm", ".mov"];
  // Problems found once a video's length is known (the browser reads it asynchronously).
  var lateProblems = typeof Map === "function" ? new Map() : null;
  var maxFiles = parseInt(zone.getAttribute("data-max-files"), 10) || 0;
  var accepted = (zone.getAttribute("data-accept") || "").split(",").map(function (s) {
    return s.trim().toLowerCase();
  }).filter(Boolean);
  var canAssign = typeof DataTransfer === "function";
  zone.classList.add("js-enabled");

  function sizeText(bytes) {
    if (bytes < 1024) { return bytes + " B"; }
    if (bytes < 1024 * 1024) { return (bytes / 1024).toFixed(0) + " KB"; }
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function extensionOf(file) {
    var name = file.name.toLowerCase();
    return name.lastIndexOf(".") >= 0 ? name.slice(name.lastIndexOf(".")) : "";
  }

  function isVideo(file) {
    return file.type.indexOf("video/") === 0 || videoExtensions.indexOf(extensionOf(file)) >= 0;
  }

  function durationText(seconds) {
    if (seconds < 60) { return Math.round(seconds * 10) / 10 + " s"; }
    var minutes = Math.floor(Math.round(seconds) / 60);
    var rest = Math.round(seconds) % 60;
    return minutes + " min" + (rest ? " " + rest + " s" : "");
  }

  function problemFor(file) {
    var ext = extensionOf(file);
    if (accepted.length && accepted.indexOf(file.type) < 0 && accepted.indexOf(ext) < 0) {
      return "not a supported image or video format";
    }
    if (file.size === 0) { return "the file is empty"; }
    var video = isVideo(file);
    var limit = video ? videoMaxBytes : maxBytes;
    if (limit && file.size > limit) {
      return "larger than " + sizeText(limit) + (video ? " (the limit for a video)" : "");
    }
    return (lateProblems && lateProblems.get(file)) || "";
  }

  function videoPreview(file, item) {
    // The first frame, where this browser can play the format (not every one plays HEVC or
    // MOV); a plain video icon where it cannot. The server decides either way.
    var video = document.createElement("video");
    video.className = "preview-thumb";
    video.muted = true;
    video.preload = "metadata";
    video.setAttribute("aria-hidden", "true");
    var url = URL.createObjectURL(file);
    video.src = url;
    video.addEventListener("loadedmetadata", function () {
      if (videoMaxSeconds && lateProblems && isFinite(video.duration) &&
          video.duration > videoMaxSeconds + 0.5) {
        lateProblems.set(file, "longer than " + durationText(videoMaxSeconds) + " (" +
          durationText(video.duration) + ")");
        URL.revokeObjectURL(url);
        render();
      }
    });
    video.addEventListener("loadeddata", function () { URL.revokeObjectURL(url); });
    video.addEventListener("error", function () {
      URL.revokeObjectURL(url);
      var icon = document.createElement("span");
      icon.className = "preview-nothumb preview-video-icon";
      icon.textContent = "\u25B6";
      video.replaceWith(icon);
    });
    item.appendChild(video);
  }

  function render() {
    var files = Array.prototype.slice.call(input.files || []);
    var problems = [];
    list.innerHTML = "";
    files.forEach(function (file, index) {
      var item = document.createElement("li");
      item.className = "preview-item";
      var problem = problemFor(file);
      if (!problem && isVideo(file)) {
        videoPreview(file, item);
      } else if (!problem && file.type.indexOf("image/") === 0) {
        var img = document.createElement("img");
        img.alt = "";
        img.className = "preview-thumb";
        img.src = URL.createObjectURL(file);
        img.onload = function () { URL.revokeObjectURL(img.src); };
        img.onerror = function () {
          // Not decodable by the browser either: the server will most likely refuse it.
          URL.revokeObjectURL(img.src);
          var blank = document.createElement("span");
          blank.className = "preview-nothumb";
          img.replaceWith(blank);
          var note = document.createElement("span");
          note.className = "preview-problem";
          note.textContent = "cannot be read as an image";
          item.insertBefore(note, item.querySelector("button"));
        };
        item.appendChild(img);
      }
      var text = document.createElement("span");
      text.className = "preview-name";
      text.textContent = file.name + " · " + sizeText(file.size);
      item.appendChild(text);
      if (problem) {
        item.classList.add("preview-bad");
        var why = document.createElement("span");
        why.className = "preview-problem";
        why.textContent = problem;
        item.appendChild(why);
        problems.push(file.name + ": " + problem);
      }
      if (canAssign) {
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "button button-secondary button-small";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.addEventListener("click", function () { removeAt(index); });
        item.appendChild(remove);
      }
      list.appendChild(item);
    });
    if (maxFiles && files.length > maxFiles) {
      problems.unshift("At most " + maxFiles + " files per upload; you chose " + files.length + ".");
    }
    errors.hidden = problems.length === 0;
    errors.textContent = problems.length ? "Fix these before uploading: " + problems.join("; ") : "";
    submit.disabled = files.length === 0 || problems.length > 0;
    submit.textContent = files.length > 1 ? "Upload and analyse " + files.length + " files" : "Upload and analyse";
  }

  function setFiles(files) {
    if (!canAssign) { return; }
    var transfer = new DataTransfer();
    files.forEach(function (f) { transfer.items.add(f); });
    input.files = transfer.files;
    render();
  }

  function removeAt(index) {
    var files = Array.prototype.slice.call(input.files);
    files.splice(index, 1);
    setFiles(files);
  }

  input.addEventListener("change", render);
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("drag-over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.remove("drag-over");
    });
  });
  zone.addEventListener("drop", function (event) {
    var dropped = Array.prototype.slice.call(event.dataTransfer.files || []);
    if (!dropped.length) { return; }
    if (input.multiple && canAssign) {
      setFiles(Array.prototype.slice.call(input.files || []).concat(dropped));
    } else {
      input.files = event.dataTransfer.files;
      render();
    }
  });
  var progress = document.getElementById("upload-progress");
  var progressBar = progress && progress.querySelector("progress");
  var progressText = progress && progress.querySelector(".upload-progress-text");

  function showProgress(loaded, total) {
    if (!progress) { return; }
    progress.hidden = false;
    var percent = total ? Math.round((loaded / total) * 100) : 0;
    progressBar.value = percent;
    progressText.textContent = percent < 100
      ? "Uploading… " + percent + "% (" + sizeText(loaded) + " of " + sizeText(total) + ")"
      : "Upload complete; checking the files…";
  }

  // Large batches take a while to send: upload with XHR to show progress, then follow the
  // server's answer exactly as a plain form post would (redirect, or the page with errors).
  form.addEventListener("submit", function (event) {
    submit.disabled = true;
    submit.textContent = "Uploading…";
    if (!progress || typeof FormData !== "function" || typeof XMLHttpRequest !== "function") {
      return;
    }
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { showProgress(e.loaded, e.total); }
    });
    xhr.addEventListener("load", function () {
      var target = xhr.responseURL || "";
      if (xhr.status < 400 && target && target !== window.location.href) {
        window.location.assign(target);
        return;
      }
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      progress.hidden = true;
      errors.hidden = false;
      errors.textContent = "The upload did not reach the server (network error). Nothing was " +
        "stored; check your connection and try again.";
      submit.disabled = false;
      submit.textContent = "Upload and analyse";
    });
    xhr.send(new FormData(form));
  });
  render();
})();
