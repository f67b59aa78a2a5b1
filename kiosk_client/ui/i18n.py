"""Every string the kiosk shows, in French (default) and English. Keys are stable identifiers."""

from __future__ import annotations

import logging
import re
from datetime import datetime

log = logging.getLogger(__name__)

CATALOGUE: dict[str, dict[str, str]] = {
    "fr": {
        "language.switch": "English",
        "listen": "Écouter",
        "check.title": "Vous vous voyez ? Vous m'entendez ?",
        "check.hint": "Regardez-vous sur l'image. Touchez « Essayer le son » : une petite musique doit se faire entendre.",
        "check.test_sound": "Essayer le son",
        "check.speak": "Votre micro : parlez, la barre bouge quand il vous entend.",
        "check.no_microphone": "Pas de micro sur cette borne. Votre conseiller ne vous entendra pas. Prévenez la personne de l'accueil.",
        "volume.down": "Son −",
        "volume.up": "Son +",
        "volume.level": "Son : {level} sur {levels}",
        "notice.read_aloud_missing": "Lecture à voix haute indisponible : boutons « Écouter » masqués (vérifier speech-dispatcher et la voix espeak-ng).",
        "notice.sounds_missing": "Pas de sortie son pour la borne : signaux sonores muets.",
        "text.larger": "Texte plus grand",
        "text.smaller": "Texte normal",
        "idle.welcome": "Bienvenue",
        "idle.today": "Rendez-vous du jour",
        "idle.none_today": "Aucun autre rendez-vous aujourd'hui.",
        "idle.schedule_unknown": "Le planning n'est pas encore disponible.",
        "idle.help": "Pour un rendez-vous, adressez-vous à l'animateur.",
        "appointment.line": "{time} — {service}",
        "upcoming.title": "Votre rendez-vous approche",
        "upcoming.with": "{service} avec {clerk}",
        "upcoming.at": "à {time}",
        "upcoming.countdown": "Début dans {countdown}",
        "upcoming.hint": "Installez-vous, l'appel démarrera tout seul.",
        "waiting.title": "Votre conseiller va vous rejoindre",
        "waiting.hint": "Restez devant l'écran. Vous n'avez rien à faire.",
        "waiting.late": "Votre conseiller arrive dans un instant.",
        "waiting.reconnecting": "La connexion a été interrompue. Nous rappelons votre conseiller…",
        "call.connecting": "Connexion en cours…",
        "call.with": "{clerk} — {service}",
        "call.mute": "Couper le micro",
        "call.unmute": "Rallumer le micro",
        "call.camera_off": "Couper la caméra",
        "call.camera_on": "Rallumer la caméra",
        "call.hang_up": "Terminer",
        "call.confirm_question": "Voulez-vous vraiment terminer l'entretien ?",
        "call.confirm_yes": "Oui, terminer",
        "call.confirm_no": "Non, continuer",
        "call.self_view": "Vous",
        "call.muted_badge": "Micro coupé",
        "ended.title": "L'entretien est terminé",
        "ended.title_no_meeting": "Pas d'entretien aujourd'hui",
        "ended.title_interrupted": "L'entretien a été interrompu",
        "ended.thanks": "Merci de votre visite.",
        "ended.clerk_no_show": "Votre conseiller n'a pas pu vous rejoindre. Adressez-vous à l'animateur.",
        "ended.call_failed": "La connexion n'a pas pu être rétablie. Adressez-vous à l'animateur.",
        "ended.cancelled": "Ce rendez-vous a été annulé. Adressez-vous à l'animateur.",
        "ended.appointment_over": "L'heure du rendez-vous est passée. Adressez-vous à l'animateur.",
        "ended.forget": "Vos informations ont été effacées de cette borne.",
        "notice.central_unreachable": "Serveur injoignable : planning enregistré utilisé.",
        "notice.not_enrolled": "Borne non reconnue par le serveur : à ré-enrôler (service informatique).",
        "notice.schedule_unreadable": "Planning reçu illisible : ancien planning conservé.",
        "notice.appointments_skipped": "Un ou plusieurs rendez-vous illisibles ont été ignorés.",
        "notice.camera_missing": "Caméra absente : une image de remplacement est envoyée.",
        "notice.microphone_missing": "Micro absent : le conseiller n'entendra pas l'usager.",
        "notice.call_setup_failing": "L'appel n'arrive pas à démarrer : nouvel essai en cours.",
        "notice.small_screen": "Écran plus petit que 1280×720 : certains boutons peuvent être hors de portée.",
        "duration.minutes": "{minutes} min {seconds:02d} s",
        "duration.seconds": "{seconds} s",
        "control.question": "{clerk} ({service}) vous propose de remplir le formulaire à votre place.",
        "control.question_hint": "Vous verrez tout ce qu'elle ou il fait, et pourrez reprendre la main à tout moment.",
        "control.accept": "Accepter",
        "control.refuse": "Refuser",
        "control.banner": "{clerk} remplit le formulaire pour vous.",
        "control.take_back": "Reprendre la main",
        "form.zoom_in": "Agrandir la page",
        "form.zoom_out": "Réduire la page",
        "form.refused.navigation": "Cette page n'est pas autorisée pendant ce rendez-vous.",
        "form.refused.popup": "Les nouvelles fenêtres sont bloquées sur cette borne.",
        "form.refused.download": "Les téléchargements sont bloqués sur cette borne.",
        "form.refused.print": "L'impression n'est pas disponible sur cette borne.",
        "form.refused.permission": "Cette page a demandé un accès refusé par la borne.",
        "form.refused.file_chooser": "Aucun document numérisé pour l'instant.",
        "form.refused.filesystem": "L'accès aux fichiers est bloqué sur cette borne.",
        "call.documents": "Documents",
        "documents.heading": "Vos documents",
        "documents.requested": "Votre conseiller vous demande : {label}",
        "documents.how_to": "Posez la feuille face contre la vitre du scanner, fermez le capot, puis touchez « Scanner une page ». Pour plusieurs feuilles, posez-les en haut du scanner, dans le bac, puis touchez « Scanner plusieurs feuilles ».",
        "documents.scanning": "Numérisation en cours… Ne bougez pas la feuille.",
        "documents.check_pages": "Vérifiez vos pages. Vous pouvez en retirer une ou en scanner d'autres, puis envoyez-les.",
        "documents.scan_flatbed": "Scanner une page",
        "documents.scan_feeder": "Scanner plusieurs feuilles",
        "documents.scan_camera": "Montrer à la caméra",
        "documents.holding": "Tenez la feuille bien à plat devant la caméra, sans bouger, jusqu'à ce qu'elle apparaisse ici.",
        "documents.error.no_page_seen": "La caméra n'a pas vu de feuille. Tenez-la à plat, bien en face, sur un fond sombre, puis réessayez.",
        "documents.page": "Page {number}",
        "documents.remove_page": "Retirer",
        "documents.clear": "Tout recommencer",
        "documents.send": "Envoyer au conseiller",
        "documents.close": "Fermer",
        "documents.blank_dropped": "{count} page(s) blanche(s) ignorée(s).",
        "documents.error.no_scanner": "Aucun scanner n'est branché. Demandez à l'animateur.",
        "documents.error.feeder_empty": "Le chargeur est vide : mettez-y vos feuilles.",
        "documents.error.paper_jammed": "Une feuille est coincée. Demandez à l'animateur de la retirer.",
        "documents.error.scanner_disconnected": "Le scanner ne répond plus. Vérifiez qu'il est branché.",
        "documents.error.scanner_not_responding": "Le scanner ne répond plus. Demandez à l'animateur.",
        "documents.error.source_unsupported": "Ce scanner n'a pas de chargeur : posez la feuille sur la vitre.",
        "documents.error.cover_open": "Le capot du scanner est ouvert.",
        "documents.error.scanner_busy": "Le scanner est occupé. Réessayez dans un instant.",
        "documents.error.scanner_failed": "La numérisation a échoué. Réessayez ou demandez à l'animateur.",
        "documents.error.processing_failed": "Une page n'a pas pu être préparée. Scannez-la de nouveau.",
        "documents.error.too_many_pages": "Trop de pages pour un seul envoi : envoyez d'abord celles-ci.",
        "documents.error.outbox_full": "La borne n'a plus de place pour garder ce document. Rien n'a été envoyé. Prévenez l'animateur.",
        "documents.error.outbox_failed": "Le document n'a pas pu être préparé. Rien n'a été envoyé. Réessayez.",
        "documents.transfer.waiting": "{name} : en attente de votre conseiller…",
        "documents.transfer.sending": "{name} : envoi en cours ({percent} %)",
        "documents.transfer.checking": "{name} : vérification par votre conseiller…",
        "documents.transfer.received": "{name} : document reçu par votre conseiller ✓",
        "documents.transfer.refused": "{name} : votre conseiller n'a pas pris ce document.",
        "documents.transfer.failed": "{name} : l'envoi a échoué. Scannez de nouveau.",
    },
    "en": {
        "language.switch": "Français",
        "listen": "Listen",
        "check.title": "Can you see yourself? Can you hear me?",
        "check.hint": "Look at yourself in the picture. Touch “Try the sound”: you should hear a short tune.",
        "check.test_sound": "Try the sound",
        "check.speak": "Your microphone: speak, and the bar moves when it hears you.",
        "check.no_microphone": "There is no microphone on this kiosk. Your advisor will not hear you. Please tell the staff.",
        "volume.down": "Sound −",
        "volume.up": "Sound +",
        "volume.level": "Sound: {level} of {levels}",
        "notice.read_aloud_missing": "Read-aloud unavailable: “Listen” buttons hidden (check speech-dispatcher and the espeak-ng voice).",
        "notice.sounds_missing": "No audio output for the kiosk: sound cues are silent.",
        "text.larger": "Larger text",
        "text.smaller": "Normal text",
        "idle.welcome": "Welcome",
        "idle.today": "Today's appointments",
        "idle.none_today": "No more appointments today.",
        "idle.schedule_unknown": "The schedule is not available yet.",
        "idle.help": "For an appointment, please ask the staff.",
        "appointment.line": "{time} — {service}",
        "upcoming.title": "Your appointment is coming up",
        "upcoming.with": "{service} with {clerk}",
        "upcoming.at": "at {time}",
        "upcoming.countdown": "Starts in {countdown}",
        "upcoming.hint": "Take a seat, the call will start by itself.",
        "waiting.title": "Your advisor will join you",
        "waiting.hint": "Stay in front of the screen. You have nothing to do.",
        "waiting.late": "Your advisor will be with you shortly.",
        "waiting.reconnecting": "The connection was interrupted. Calling your advisor again…",
        "call.connecting": "Connecting…",
        "call.with": "{clerk} — {service}",
        "call.mute": "Turn mic off",
        "call.unmute": "Turn mic on",
        "call.camera_off": "Turn camera off",
        "call.camera_on": "Turn camera on",
        "call.hang_up": "End",
        "call.confirm_question": "Do you really want to end the meeting?",
        "call.confirm_yes": "Yes, end it",
        "call.confirm_no": "No, continue",
        "call.self_view": "You",
        "call.muted_badge": "Microphone off",
        "ended.title": "The meeting has ended",
        "ended.title_no_meeting": "No meeting this time",
        "ended.title_interrupted": "The meeting was interrupted",
        "ended.thanks": "Thank you for your visit.",
        "ended.clerk_no_show": "Your advisor could not join. Please ask the staff.",
        "ended.call_failed": "The connection could not be restored. Please ask the staff.",
        "ended.cancelled": "This appointment was cancelled. Please ask the staff.",
        "ended.appointment_over": "The appointment time has passed. Please ask the staff.",
        "ended.forget": "Your information has been erased from this kiosk.",
        "notice.central_unreachable": "Server unreachable: using the saved schedule.",
        "notice.not_enrolled": "Kiosk not recognised by the server: enrol it again (IT staff).",
        "notice.schedule_unreadable": "Unreadable schedule received: keeping the previous one.",
        "notice.appointments_skipped": "One or more unreadable appointments were ignored.",
        "notice.camera_missing": "No camera: a placeholder image is sent.",
        "notice.microphone_missing": "No microphone: the advisor will not hear the visitor.",
        "notice.call_setup_failing": "The call does not start: trying again.",
        "notice.small_screen": "Screen smaller than 1280×720: some buttons may be out of reach.",
        "duration.minutes": "{minutes} min {seconds:02d} s",
        "duration.seconds": "{seconds} s",
        "control.question": "{clerk} ({service}) offers to fill in the form for you.",
        "control.question_hint": "You will see everything they do, and can take control back at any time.",
        "control.accept": "Accept",
        "control.refuse": "Refuse",
        "control.banner": "{clerk} is filling in the form for you.",
        "control.take_back": "Take control back",
        "form.zoom_in": "Larger page",
        "form.zoom_out": "Smaller page",
        "form.refused.navigation": "This page is not allowed during this appointment.",
        "form.refused.popup": "New windows are blocked on this kiosk.",
        "form.refused.download": "Downloads are blocked on this kiosk.",
        "form.refused.print": "Printing is not available on this kiosk.",
        "form.refused.permission": "This page asked for an access the kiosk refused.",
        "form.refused.file_chooser": "No scanned document yet.",
        "form.refused.filesystem": "File access is blocked on this kiosk.",
        "call.documents": "Documents",
        "documents.heading": "Your documents",
        "documents.requested": "Your advisor asks for: {label}",
        "documents.how_to": "Lay the sheet face down on the scanner glass, close the lid, then touch “Scan a page”. For several sheets, put them in the tray on top of the scanner, then touch “Scan several sheets”.",
        "documents.scanning": "Scanning… Please do not move the sheet.",
        "documents.check_pages": "Check your pages. You can remove one or scan more, then send them.",
        "documents.scan_flatbed": "Scan a page",
        "documents.scan_feeder": "Scan several sheets",
        "documents.scan_camera": "Show it to the camera",
        "documents.holding": "Hold the sheet flat in front of the camera, without moving, until it appears here.",
        "documents.error.no_page_seen": "The camera did not see a sheet. Hold it flat, facing the camera, against a dark background, then try again.",
        "documents.page": "Page {number}",
        "documents.remove_page": "Remove",
        "documents.clear": "Start over",
        "documents.send": "Send to my advisor",
        "documents.close": "Close",
        "documents.blank_dropped": "{count} blank page(s) left out.",
        "documents.error.no_scanner": "No scanner is connected. Please ask the staff.",
        "documents.error.feeder_empty": "The feeder is empty: put your sheets in it.",
        "documents.error.paper_jammed": "A sheet is stuck. Please ask the staff to remove it.",
        "documents.error.scanner_disconnected": "The scanner stopped answering. Check that it is plugged in.",
        "documents.error.scanner_not_responding": "The scanner stopped answering. Please ask the staff.",
        "documents.error.source_unsupported": "This scanner has no feeder: lay the sheet on the glass.",
        "documents.error.cover_open": "The scanner's lid is open.",
        "documents.error.scanner_busy": "The scanner is busy. Try again in a moment.",
        "documents.error.scanner_failed": "Scanning failed. Try again or ask the staff.",
        "documents.error.processing_failed": "A page could not be prepared. Please scan it again.",
        "documents.error.too_many_pages": "Too many pages for one sending: send these first.",
        "documents.error.outbox_full": "The kiosk has no room left to keep this document. Nothing was sent. Please tell the staff.",
        "documents.error.outbox_failed": "The document could not be prepared. Nothing was sent. Please try again.",
        "documents.transfer.waiting": "{name}: waiting for your advisor…",
        "documents.transfer.sending": "{name}: sending ({percent} %)",
        "documents.transfer.checking": "{name}: your advisor is checking it…",
        "documents.transfer.received": "{name}: document received by your advisor ✓",
        "documents.transfer.refused": "{name}: your advisor did not take this document.",
        "documents.transfer.failed": "{name}: sending failed. Please scan again.",
    },
}

_PLACEHOLDER = re.compile(r"(\{[^}]*\})")


def french_typography(text: str) -> str:
    """French typesetting outside {placeholders}: typographic apostrophes, a no-break space before
    « : » and « % » and inside « », a narrow one before « ; ! ? » (so that a line never starts with a
    colon or a question mark)."""
    parts = _PLACEHOLDER.split(text)
    for i in range(0, len(parts), 2):
        part = parts[i].replace("'", "\u2019")
        part = re.sub(r" ([:»%])", "\u00a0\\1", part)
        part = re.sub(r" ([;!?])", "\u202f\\1", part)
        parts[i] = part.replace("« ", "«\u00a0")
    return "".join(parts)


CATALOGUE["fr"] = {key: french_typography(text) for key, text in CATALOGUE["fr"].items()}

DAYS = {
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
MONTHS = {
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


class Translator:
    def __init__(self, language: str = "fr") -> None:
        if language not in CATALOGUE:
            raise ValueError(f"unsupported language {language!r}")
        self.language = language

    def __call__(self, key: str, **values: object) -> str:
        text = CATALOGUE[self.language].get(key)
        if text is None:  # a missing translation: French rather than nothing (or a crash)
            log.error("no %s text for %r: shown in French", self.language, key)
            text = CATALOGUE["fr"][key]
        return text.format(**values)

    def other_language(self) -> str:
        return "en" if self.language == "fr" else "fr"

    def time(self, moment: datetime) -> str:
        local = moment.astimezone()
        return f"{local.hour}h{local.minute:02d}" if self.language == "fr" else local.strftime("%H:%M")

    def date(self, moment: datetime) -> str:
        local = moment.astimezone()
        day, month = DAYS[self.language][local.weekday()], MONTHS[self.language][local.month - 1]
        if self.language == "fr":
            return f"{day} {local.day} {month} {local.year}".capitalize()
        return f"{day} {local.day} {month} {local.year}"

    def duration(self, seconds: float) -> str:
        total = max(0, int(seconds))
        if total >= 60:
            return self("duration.minutes", minutes=total // 60, seconds=total % 60)
        return self("duration.seconds", seconds=total)
